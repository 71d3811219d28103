"""Traffic policy (registry.traffic) and per-request routing (serving.traffic): canary shares
over many draws and across many sticky keys, shadow shares, validation, the policy's
history. Shares are checked against scipy's exact binomial and chi-square tests."""

from __future__ import annotations

import random
from collections import Counter

import pytest
from pydantic import ValidationError
from scipy import stats

from contracts.errors import InvalidInput, NotFound
from registry import FeatureSpec, ModelSchema, OutputSpec, Registry
from registry.traffic import TrafficBook, TrafficEvent, TrafficPolicy
from serving.traffic import Router
from tests.clock import ManualClock

P_MIN = 1e-4  # seeded draws: a p-value under this means the shares are off, not bad luck
SCHEMA = ModelSchema(kind="tensor", task="regression", inputs=(FeatureSpec(name="x", datatype="FP32", shape=(2,)),),
                     outputs=(OutputSpec(name="y", datatype="FP32"),))


def _router(policy: TrafficPolicy, primary: int = 1, seed: int = 7) -> Router:
    return Router("demo", primary, policy, random.Random(seed))


def _assert_shares(counts: Counter, expected: dict[int, float], n: int) -> None:
    """The observed split of ``n`` draws is the expected one (chi-square goodness of fit)."""
    versions = sorted(expected)
    observed = [counts[v] for v in versions]
    assert sum(observed) == n, counts  # no version outside the expected ones
    assert stats.chisquare(observed, [expected[v] * n for v in versions]).pvalue > P_MIN, counts


# -- the policy --------------------------------------------------------------------------

def test_the_empty_policy_sends_everything_to_the_primary():
    router = _router(TrafficPolicy(), primary=3)
    assert {router.choose() for _ in range(100)} == {3} and router.choose("user-1") == 3
    assert router.shadow_targets() == () and router.versions_needed() == (3,)


@pytest.mark.parametrize(("fields", "message"), [
    ({"canaries": {2: 0.6, 3: 0.5}}, "canary shares sum to 1.1, more than 1"),
    ({"canaries": {2: 0}}, "greater than 0"),
    ({"shadows": {2: 0}}, "greater than 0"),
    ({"canaries": {2: 1.5}}, "less than or equal to 1"),
    ({"canaries": {2: float("nan")}}, "finite number"),
    ({"canaries": {0: 0.1}}, "greater than or equal to 1"),
    ({"canaries": {2: 0.1}, "shadows": {2: 0.5}}, "version 2 cannot be both a canary and a shadow"),
    ({"sticky_key": "x user"}, "is not a header name"),
    ({"sticky_key": "param:"}, "needs a parameter name"),
    ({"canaries": {2: 0.1}, "weights": {}}, "Extra inputs are not permitted"),
])
def test_invalid_policies_are_refused(fields, message):
    with pytest.raises(ValidationError, match=message):
        TrafficPolicy(**fields)


def test_valid_edges_and_the_sticky_key_forms():
    assert TrafficPolicy(canaries={2: 0.7, 3: 0.2, 4: 0.1}).canaries[4] == 0.1  # sums to 1 within rounding
    assert TrafficPolicy(shadows={2: 1.0, 3: 1.0}).shadows == {2: 1.0, 3: 1.0}  # shadows do not share
    assert TrafficPolicy(sticky_key="X-User-Id").sticky_source == ("header", "x-user-id")
    assert TrafficPolicy(sticky_key="param:user_id").sticky_source == ("param", "user_id")
    assert TrafficPolicy().sticky_source is None
    assert TrafficPolicy.model_validate_json('{"canaries": {"2": 0.25}}').canaries == {2: 0.25}


# -- random assignment and shadows ---------------------------------------------------------

def test_canary_shares_hold_over_many_draws():
    n = 100_000
    router = _router(TrafficPolicy(canaries={2: 0.05, 3: 0.2}))
    _assert_shares(Counter(router.choose() for _ in range(n)), {1: 0.75, 2: 0.05, 3: 0.2}, n)


@pytest.mark.parametrize("share", [0.01, 0.5])
def test_one_canary_share_within_a_binomial_bound(share):
    n = 50_000
    router = _router(TrafficPolicy(canaries={2: share}), seed=11)
    hits = sum(router.choose() == 2 for _ in range(n))
    assert stats.binomtest(hits, n, share).pvalue > P_MIN, hits


def test_a_full_canary_split_leaves_the_primary_nothing():
    router = _router(TrafficPolicy(canaries={2: 0.5, 3: 0.5}))
    assert {router.choose() for _ in range(2_000)} == {2, 3}


def test_shadow_shares_are_drawn_independently():
    n = 50_000
    router = _router(TrafficPolicy(canaries={2: 0.1}, shadows={3: 0.3, 4: 1.0}), seed=3)
    draws = [router.shadow_targets() for _ in range(n)]
    assert all(d[-1] == 4 for d in draws)  # share 1: every request
    both = sum(d == (3, 4) for d in draws)
    assert stats.binomtest(both, n, 0.3).pvalue > P_MIN, both
    assert router.versions_needed() == (1, 2, 3, 4)


def test_a_shadow_that_is_the_primary_is_ignored():
    router = _router(TrafficPolicy(shadows={1: 0.5, 2: 0.5}), primary=1)
    assert {t for _ in range(200) for t in router.shadow_targets()} == {2}
    assert router.versions_needed() == (1, 2)


# -- sticky assignment ----------------------------------------------------------------------

def test_one_key_always_gets_one_version():
    policy = TrafficPolicy(canaries={2: 0.3}, sticky_key="x-user")
    routers = [_router(policy, seed=s) for s in range(3)]  # the random source plays no part
    for key in ("ana", "bo", b"ana", "ü"):
        assert len({r.choose(key) for r in routers for _ in range(20)}) == 1
    assert routers[0].choose("ana") == routers[0].choose(b"ana")


def test_sticky_shares_hold_across_many_keys():
    n = 40_000
    router = _router(TrafficPolicy(canaries={2: 0.1, 3: 0.25}, sticky_key="x-user"))
    _assert_shares(Counter(router.choose(f"user-{i}") for i in range(n)), {1: 0.65, 2: 0.1, 3: 0.25}, n)


def test_a_growing_canary_keeps_the_callers_it_has():
    keys = [f"user-{i}" for i in range(5_000)]
    small, large = (_router(TrafficPolicy(canaries={2: s}, sticky_key="x-user")) for s in (0.05, 0.5))
    in_small = {k for k in keys if small.choose(k) == 2}
    assert in_small and all(large.choose(k) == 2 for k in in_small)


def test_the_model_name_decorrelates_assignment():
    policy = TrafficPolicy(canaries={2: 0.5}, sticky_key="x-user")
    a, b = Router("a", 1, policy), Router("b", 1, policy)
    keys = [f"user-{i}" for i in range(2_000)]
    same = sum(a.choose(k) == b.choose(k) for k in keys)
    assert stats.binomtest(same, len(keys), 0.5).pvalue > P_MIN


def test_an_empty_or_missing_sticky_value_draws_at_random():
    router = _router(TrafficPolicy(canaries={2: 0.5}, sticky_key="x-user"))
    assert {router.choose("") for _ in range(200)} == {1, 2} == {router.choose(None) for _ in range(200)}


def test_the_sticky_value_from_headers_or_parameters():
    by_header = _router(TrafficPolicy(canaries={2: 0.5}, sticky_key="X-User"))
    assert by_header.sticky_value({"x-user": "ana"}, {"x-user": "bo"}) == "ana"
    assert by_header.sticky_value({}, {"x-user": "bo"}) is None
    by_param = _router(TrafficPolicy(canaries={2: 0.5}, sticky_key="param:user_id"))
    assert by_param.sticky_value({"user_id": "h"}, {"user_id": "ana"}) == "ana"
    assert by_param.sticky_value({}, {"user_id": 42}) == "42" == by_param.sticky_value({}, {"user_id": "42"})
    assert by_param.sticky_value({}, None) is None and by_param.sticky_value({}, {"user_id": None}) is None
    assert _router(TrafficPolicy()).sticky_value({"x-user": "ana"}) is None


# -- the book: stored, versioned, validated against the registry ---------------------------

@pytest.fixture
def reg(tmp_path) -> Registry:
    reg = Registry(str(tmp_path / "reg"), clock=ManualClock(1_900_000_000))
    for _ in range(3):
        reg.publish("m", {"model.pt": b"w", "schema.json": SCHEMA.model_dump_json().encode()})
    return reg


def test_no_policy_is_the_empty_policy(reg):
    book = TrafficBook(reg)
    assert book.current("m") == TrafficPolicy() and book.history("m") == []
    assert book.latest_seq("m") == 0 and book.last("m") is None


def test_set_then_replace_then_clear_keeps_the_history(reg):
    book = TrafficBook(reg)
    first = TrafficPolicy(canaries={2: 0.05}, sticky_key="x-user")
    event = book.set("m", first, actor="ana", actor_id="key:00aa", reason="canary 5%")
    assert event == TrafficEvent(seq=1, model="m", policy=first, actor="ana", actor_id="key:00aa",
                                 reason="canary 5%", at=1_900_000_000)
    reg.clock.advance(60)
    book.set("m", TrafficPolicy(canaries={2: 0.25}, shadows={3: 0.1}), actor="ana")
    assert book.latest_seq("m") == 2 and book.current("m").canaries == {2: 0.25}
    book.set("m", TrafficPolicy(), actor="bo", reason="done")
    history = TrafficBook(Registry(reg.root)).history("m")  # as another process reads it
    assert [(e.seq, e.actor, e.at) for e in history] == \
        [(1, "ana", 1_900_000_000), (2, "ana", 1_900_000_060), (3, "bo", 1_900_000_060)]
    assert history[0].policy == first and book.current("m") == TrafficPolicy()
    assert reg.list_models() == ["m"] and reg.list_versions("m") == [1, 2, 3]  # not a version, not a model


def test_versions_must_exist(reg):
    book = TrafficBook(reg)
    with pytest.raises(NotFound, match="model 'm' has no version 7, 9"):
        book.set("m", TrafficPolicy(canaries={9: 0.1}, shadows={7: 0.5}), actor="a")
    with pytest.raises(NotFound, match="unknown model 'nope'"):
        book.set("nope", TrafficPolicy(), actor="a")
    with pytest.raises(InvalidInput, match="model name"):
        book.current("../m")
    assert book.latest_seq("m") == 0
