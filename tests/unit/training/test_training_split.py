"""Splitting: deterministic, seeded, order-independent, and nothing leaks between splits."""

from __future__ import annotations

import numpy as np
import pytest

from training import demo_data
from training.split import SPLITS, assign, row_hashes, split_indices


def _cols(rows=3_000, seed=0):
    return demo_data.generate(rows, seed=seed)


def _names(cols):
    return list(cols)


def test_same_data_same_split():
    cols = _cols()
    a = split_indices(cols, _names(cols), seed=7, validation_share=0.1, test_share=0.2)
    b = split_indices(cols, _names(cols), seed=7, validation_share=0.1, test_share=0.2)
    for name in SPLITS:
        np.testing.assert_array_equal(a[name], b[name])


def test_splits_partition_the_rows():
    cols = _cols()
    idx = split_indices(cols, _names(cols), seed=1, validation_share=0.1, test_share=0.2)
    together = np.sort(np.concatenate([idx[s] for s in SPLITS]))
    np.testing.assert_array_equal(together, np.arange(3_000))


def test_a_row_keeps_its_split_whatever_the_row_order():
    cols = _cols()
    perm = np.random.default_rng(5).permutation(3_000)
    shuffled = {k: v[perm] for k, v in cols.items()}
    h = row_hashes(cols, _names(cols))
    h_shuffled = row_hashes(shuffled, _names(cols))
    np.testing.assert_array_equal(assign(h, 3, 0.1, 0.2)[perm], assign(h_shuffled, 3, 0.1, 0.2))


def test_duplicate_rows_never_straddle_splits():
    cols = _cols(500)
    doubled = {k: np.concatenate([v, v[::-1]]) for k, v in cols.items()}
    which = assign(row_hashes(doubled, _names(doubled)), 0, 0.1, 0.2)
    np.testing.assert_array_equal(which[:500], which[500:][::-1])


def test_group_key_keeps_a_group_in_one_split():
    rng = np.random.default_rng(0)
    groups = np.array([f"g{i}" for i in rng.integers(0, 300, 5_000)], dtype=object)
    cols = {"group": groups, "x": rng.normal(size=5_000)}
    idx = split_indices(cols, ["group"], seed=2, validation_share=0.1, test_share=0.2)
    seen = [set(groups[idx[s]]) for s in SPLITS]
    assert not (seen[0] & seen[1]) and not (seen[0] & seen[2]) and not (seen[1] & seen[2])


def test_seed_changes_the_assignment():
    cols = _cols()
    h = row_hashes(cols, _names(cols))
    assert (assign(h, 0, 0.1, 0.2) != assign(h, 1, 0.1, 0.2)).mean() > 0.2


@pytest.mark.parametrize("val,test", [(0.1, 0.2), (0.0, 0.3), (0.25, 0.25)])
def test_shares_within_binomial_bounds(val, test):
    cols = _cols(20_000)
    which = assign(row_hashes(cols, _names(cols)), 11, val, test)
    for share, k in ((1 - val - test, 0), (val, 1), (test, 2)):
        sigma = np.sqrt(share * (1 - share) / 20_000)
        assert abs((which == k).mean() - share) <= 5 * sigma + 1e-12


def test_missing_values_hash_consistently():
    a = {"x": np.array([1.0, np.nan, 3.0]), "c": np.array(["u", None, "w"], dtype=object)}
    b = {"x": np.array([1.0, np.nan, 3.0]), "c": np.array(["u", None, "w"], dtype=object)}
    np.testing.assert_array_equal(row_hashes(a, ["x", "c"]), row_hashes(b, ["x", "c"]))
    assert len(set(row_hashes(a, ["x", "c"]).tolist())) == 3


def test_empty_input():
    idx = split_indices({"x": np.zeros(0)}, ["x"], 0, 0.1, 0.2)
    assert all(len(v) == 0 for v in idx.values())
