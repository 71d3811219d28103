"""The registry contract: atomic, immutable, numbered versions; version policies;
registering user torch models."""

from __future__ import annotations

import hashlib
import io
import json
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch
from torch import nn

from contracts.errors import InvalidInput, NotFound, RegistryError
from registry import FeatureSpec, ModelSchema, OutputSpec, Registry, VersionPolicy
from registry.preprocess import Preprocessor
from registry.store import MANIFEST
from registry.torch_io import register_torch_model

TENSOR_SCHEMA = ModelSchema(
    kind="tensor",
    task="regression",
    inputs=(FeatureSpec(name="x", datatype="FP32", shape=(4,)),),
    outputs=(OutputSpec(name="y", datatype="FP32", shape=(2,)),),
)


def files(tag: str) -> dict[str, bytes]:
    """A minimal version; ``model.pt`` is not loaded by the store, so any bytes do."""
    return {
        "model.pt": f"weights {tag}".encode(),
        "schema.json": TENSOR_SCHEMA.model_dump_json().encode(),
        "metrics.json": json.dumps({"tag": tag}).encode(),
    }


def assert_complete(version) -> None:
    """Every file the manifest names is there with the recorded size and hash."""
    for name, meta in version.manifest["files"].items():
        data = version.read(name)
        assert len(data) == meta["bytes"]
        assert hashlib.sha256(data).hexdigest() == meta["sha256"]


def test_publish_get_list(tmp_path):
    reg = Registry(str(tmp_path))
    assert reg.list_models() == []
    v1 = reg.publish("m", files("a"))
    assert (v1.name, v1.version) == ("m", 1)
    assert reg.list_models() == ["m"]
    assert reg.list_versions("m") == [1]
    got = reg.get("m")
    assert got.version == 1 and got.read("model.pt") == b"weights a"
    assert got.metrics == {"tag": "a"}
    assert got.schema == TENSOR_SCHEMA
    assert_complete(got)
    summary = got.summary()
    assert summary["name"] == "m" and summary["version"] == 1 and "model.pt" in summary["files"]


def test_versions_increase_and_a_published_version_never_changes(tmp_path):
    reg = Registry(str(tmp_path))
    first = reg.publish("m", files("a"))
    manifest_before = (tmp_path / "m" / "1" / MANIFEST).read_bytes()
    second = reg.publish("m", files("b"))  # same name again: a new number, never an overwrite
    third = reg.publish("m", files("c"))
    assert [first.version, second.version, third.version] == [1, 2, 3]
    assert (tmp_path / "m" / "1" / MANIFEST).read_bytes() == manifest_before
    assert reg.get("m", 1).read("model.pt") == b"weights a"
    assert reg.get("m").version == 3
    assert reg.get("m", 2).read("model.pt") == b"weights b"


def test_unknown_model_and_version_are_not_found(tmp_path):
    reg = Registry(str(tmp_path))
    with pytest.raises(NotFound, match="unknown model 'nope'"):
        reg.get("nope")
    reg.publish("m", files("a"))
    with pytest.raises(NotFound, match="no version 7"):
        reg.get("m", 7)
    with pytest.raises(NotFound, match="no file"):
        reg.get("m").read("preprocessor.json")


def test_publish_needs_weights_and_schema(tmp_path):
    reg = Registry(str(tmp_path))
    with pytest.raises(RegistryError, match="model.pt"):
        reg.publish("m", {"schema.json": TENSOR_SCHEMA.model_dump_json().encode()})
    assert reg.list_models() == []


def test_concurrent_publishers_get_distinct_complete_versions(tmp_path):
    reg = Registry(str(tmp_path))
    # 18 publishes: a publisher loses a race only to a number someone else took, so at most
    # 17 times, under the store's 20 retries
    n_threads, per_thread = 6, 3
    start = threading.Barrier(n_threads + 1)
    stop_reading = threading.Event()
    seen_incomplete: list[str] = []

    def publisher(t: int) -> list[int]:
        mine = Registry(str(tmp_path))  # one client per thread, as separate processes would be
        start.wait(timeout=30)
        return [mine.publish("m", files(f"{t}-{i}")).version for i in range(per_thread)]

    def reader() -> int:
        start.wait(timeout=30)
        checks = 0
        while not stop_reading.is_set():
            for v in reg.list_versions("m"):
                try:
                    assert_complete(reg.get("m", v))
                except Exception as exc:  # noqa: BLE001 - collected, asserted below
                    seen_incomplete.append(f"version {v}: {exc!r}")
                checks += 1
        return checks

    with ThreadPoolExecutor(n_threads + 1) as pool:
        reading = pool.submit(reader)
        try:
            results = list(pool.map(publisher, range(n_threads)))
        finally:
            stop_reading.set()  # also when a publisher failed: the reader must not spin forever
        reading.result()

    versions = sorted(v for r in results for v in r)
    assert versions == list(range(1, n_threads * per_thread + 1))
    assert seen_incomplete == []
    tags = {reg.get("m", v).read("model.pt") for v in versions}
    assert len(tags) == n_threads * per_thread  # every version holds exactly one publisher's files
    for v in versions:
        assert_complete(reg.get("m", v))
    assert [p.name for p in (tmp_path / "m" / ".staging").iterdir()] == []


def test_first_publishes_of_many_new_models_race_safely(tmp_path):
    """Concurrent first publishes create the model directory while others list it."""
    names = [f"m{i}" for i in range(12)]
    start = threading.Barrier(4)

    def publisher(t: int) -> list[int]:
        mine = Registry(str(tmp_path))
        start.wait(timeout=30)
        return [mine.publish(name, files(f"{t}-{name}")).version for name in names]

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(publisher, range(4)))
    reg = Registry(str(tmp_path))
    for i, name in enumerate(names):
        assert sorted(r[i] for r in results) == [1, 2, 3, 4]
        assert reg.list_versions(name) == [1, 2, 3, 4]


def test_staging_is_never_visible(tmp_path):
    reg = Registry(str(tmp_path))
    # a publisher that died while staging: its files are there, its version is not
    crashed = tmp_path / "ghost" / ".staging" / "0123abcd"
    crashed.mkdir(parents=True)
    (crashed / "model.pt").write_bytes(b"x")
    (crashed / MANIFEST).write_text("{}")
    assert reg.list_models() == []
    assert reg.list_versions("ghost") == []
    reg.publish("m", files("a"))
    (tmp_path / "m" / ".staging" / "deadbeef").mkdir(parents=True)
    assert reg.list_models() == ["m"]
    assert reg.list_versions("m") == [1]


def test_a_version_directory_without_manifest_is_ignored(tmp_path):
    reg = Registry(str(tmp_path))
    reg.publish("m", files("a"))
    half = tmp_path / "m" / "2"  # a half-written version (object-store style) or a stray directory
    half.mkdir()
    (half / "model.pt").write_bytes(b"partial")
    assert reg.list_versions("m") == [1]
    assert reg.get("m").version == 1
    with pytest.raises(NotFound):
        reg.get("m", 2)
    (tmp_path / "other" / "1").mkdir(parents=True)
    assert reg.list_models() == ["m"]
    # publishing goes past it instead of failing or writing into it
    new = reg.publish("m", files("b"))
    assert new.version == 3
    assert (half / "model.pt").read_bytes() == b"partial"
    assert reg.list_versions("m") == [1, 3]


@pytest.mark.parametrize(
    "policy, expected",
    [
        (VersionPolicy(), [5]),
        (VersionPolicy(policy="latest", latest_n=2), [4, 5]),
        (VersionPolicy(policy="latest", latest_n=10), [1, 2, 4, 5]),
        (VersionPolicy(policy="all"), [1, 2, 4, 5]),
        (VersionPolicy(policy="specific", versions=(2, 4)), [2, 4]),
        (VersionPolicy(policy="specific", versions=(3, 9)), []),
    ],
)
def test_version_policy_select(policy, expected):
    assert policy.select([5, 1, 4, 2]) == expected


def test_version_policy_rejects_bad_values():
    from pydantic import ValidationError

    with pytest.raises(ValidationError):
        VersionPolicy(policy="newest")
    with pytest.raises(ValidationError):
        VersionPolicy(latest_n=0)
    with pytest.raises(ValidationError):
        VersionPolicy(unknown=1)


def test_served_applies_the_policy(tmp_path):
    reg = Registry(str(tmp_path))
    for tag in "abc":
        reg.publish("m", files(tag))
    assert [v.version for v in reg.served("m", VersionPolicy())] == [3]
    assert [v.version for v in reg.served("m", VersionPolicy(policy="latest", latest_n=2))] == [2, 3]
    assert [v.version for v in reg.served("m", VersionPolicy(policy="all"))] == [1, 2, 3]
    assert [v.version for v in reg.served("m", VersionPolicy(policy="specific", versions=(1,)))] == [1]


# -- registering torch models ---------------------------------------------------------


class Scriptable(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.linear = nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.linear(x))


class NeedsTracing(Scriptable):
    """TorchScript cannot compile a Python callable attribute; tracing can run it."""

    def __init__(self) -> None:
        super().__init__()
        self.post = lambda t: t * 2.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.post(torch.tanh(self.linear(x)))


def reference(module: nn.Module, x: torch.Tensor) -> np.ndarray:
    with torch.no_grad():
        return module(x).numpy()


X = torch.randn(3, 4, generator=torch.Generator().manual_seed(1))


def test_register_scriptable_module(tmp_path):
    reg = Registry(str(tmp_path))
    module = Scriptable()
    mv = register_torch_model(reg, "lin", module, TENSOR_SCHEMA, metrics={"mse": 0.1}, lineage={"run": "r1"})
    assert mv.version == 1 and mv.metrics == {"mse": 0.1} and mv.lineage == {"run": "r1"}
    assert mv.preprocessor() is None
    loaded = mv.load_torch()
    assert isinstance(loaded, torch.jit.ScriptModule)
    np.testing.assert_allclose(reference(loaded, X), reference(module, X), rtol=1e-6)
    assert_complete(mv)


def test_register_falls_back_to_tracing_with_an_example_input(tmp_path):
    reg = Registry(str(tmp_path))
    module = NeedsTracing()
    with pytest.raises(InvalidInput, match="example_input"):
        register_torch_model(reg, "traced", module, TENSOR_SCHEMA)
    assert reg.list_models() == []
    mv = register_torch_model(reg, "traced", module, TENSOR_SCHEMA, example_input=torch.zeros(1, 4))
    np.testing.assert_allclose(reference(mv.load_torch(), X), reference(module, X), rtol=1e-6)


def test_register_torchscript_file_bytes_and_stream(tmp_path):
    reg = Registry(str(tmp_path))
    module = torch.jit.script(Scriptable())
    path = tmp_path / "model.pt"
    torch.jit.save(module, str(path))
    raw = path.read_bytes()
    by_path = register_torch_model(reg, "ts", str(path), TENSOR_SCHEMA)
    by_bytes = register_torch_model(reg, "ts", raw, TENSOR_SCHEMA)
    by_stream = register_torch_model(reg, "ts", io.BytesIO(raw), TENSOR_SCHEMA)
    assert [by_path.version, by_bytes.version, by_stream.version] == [1, 2, 3]
    for mv in (by_path, by_bytes, by_stream):
        assert mv.read("model.pt") == raw
        np.testing.assert_allclose(reference(mv.load_torch(), X), reference(module, X), rtol=1e-6)


def test_register_refuses_what_is_not_torchscript(tmp_path):
    reg = Registry(str(tmp_path))
    with pytest.raises(InvalidInput, match="model: not a TorchScript file"):
        register_torch_model(reg, "bad", b"not a model", TENSOR_SCHEMA)
    assert reg.list_models() == []


def test_tabular_model_without_preprocessor_is_invalid(tmp_path):
    from training.demo_data import demo_schema

    reg = Registry(str(tmp_path))
    with pytest.raises(InvalidInput, match="preprocessor"):
        register_torch_model(reg, "tab", Scriptable(), demo_schema())
    assert reg.list_models() == []


def test_tabular_model_stores_its_preprocessor(tmp_path):
    from training import demo_data

    reg = Registry(str(tmp_path))
    schema = demo_data.demo_schema()
    cols = demo_data.generate(300, seed=3)
    pre = Preprocessor.fit(schema, cols)
    torch.manual_seed(0)
    mv = register_torch_model(reg, "tab", nn.Linear(pre.width, 2), schema, preprocessor=pre)
    loaded = mv.preprocessor()
    assert loaded is not None and loaded.to_json() == pre.to_json()
    np.testing.assert_array_equal(loaded.transform(cols), pre.transform(cols))


def test_latest_policy_prefers_production_so_candidates_are_not_served(tmp_path):
    """A freshly trained candidate must not be served before it is promoted (issue 4)."""
    from registry import Registry, VersionPolicy

    reg = Registry(str(tmp_path))
    for tag in ("a", "b", "c"):
        reg.publish("m", files(tag))
    assert [v.version for v in reg.served("m", VersionPolicy())] == [3]  # no stages yet: the latest
    reg.promote("m", 2, actor="test", reason="good", force=True)
    reg.set_candidate("m", 3, actor="test")
    assert [v.version for v in reg.served("m", VersionPolicy())] == [2]
    assert [v.version for v in reg.served("m", VersionPolicy(prefer_stage=None))] == [3]
    assert [v.version for v in reg.served("m", VersionPolicy(policy="all"))] == [1, 2, 3]


def test_versions_and_stage_changes_are_stamped_by_the_registry_clock(tmp_path):
    from tests.clock import ManualClock

    clock = ManualClock(1_000_000_000.0)
    reg = Registry(str(tmp_path), clock=clock)
    v1 = reg.publish("m", files("a"))
    clock.advance(3600)
    event = reg.promote("m", 1, actor="test", reason="first", force=True)
    assert v1.manifest["created_at"] == 1_000_000_000.0 and event.at == 1_000_003_600.0
    assert [e.at for e in Registry(str(tmp_path)).stages.history("m")] == [1_000_003_600.0]


def test_stage_events_record_the_identity_id_and_old_events_without_it_still_read(tmp_path):
    """``actor_id`` (issue 16) was added beside ``actor``: recorded by every stage change,
    None when not given, and absent from events written before it, which still load."""
    reg = Registry(str(tmp_path))
    for tag in ("a", "b", "c"):
        reg.publish("m", files(tag))
    reg.set_candidate("m", 3, actor="run:r1")
    reg.promote("m", 1, actor="ana", actor_id="key:0011223344556677", reason="first", force=True)
    reg.promote("m", 2, actor="alice", actor_id="jwt:https://id.test:alice", reason="second", force=True)
    reg.rollback("m", actor="ana", actor_id="key:0011223344556677", reason="bad")
    history = Registry(str(tmp_path)).stage_history("m")
    assert [(e.action, e.actor, e.actor_id) for e in history] == [
        ("candidate", "run:r1", None), ("promote", "ana", "key:0011223344556677"),
        ("promote", "alice", "jwt:https://id.test:alice"), ("rollback", "ana", "key:0011223344556677")]
    first = tmp_path / "m" / ".stages" / f"{1:08d}" / "event.json"
    old = json.loads(first.read_text())
    del old["actor_id"]  # as written before the field existed
    first.write_text(json.dumps(old))
    assert Registry(str(tmp_path)).stage_history("m")[0].actor_id is None
    assert Registry(str(tmp_path)).stages.state("m").production == 1


@pytest.mark.parametrize("filename", ["model.pt", "schema.json"])
def test_a_file_changed_after_publishing_is_refused(tmp_path, filename):
    reg = Registry(str(tmp_path))
    v1 = reg.publish("m", files("a"))
    path = tmp_path / "m" / "1" / filename
    original = path.read_bytes()
    path.write_bytes(original[:-1] + bytes([original[-1] ^ 1]))  # one bit flipped, same size
    with pytest.raises(RegistryError, match=rf"m version 1: {filename} does not match its manifest"):
        reg.get("m", 1).read(filename)
    path.write_bytes(original + b" ")  # a byte longer
    with pytest.raises(RegistryError, match="does not match its manifest"):
        v1.read(filename)
    path.write_bytes(original)
    assert v1.read(filename) == original
