"""A whole batch run without Ray: outputs, rejects, keys, formats, resume and idempotence."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from batch.config import BatchConfig
from batch.fragment import FragmentScorer
from batch.run import plan_run, score_in_process
from contracts.errors import Conflict, InvalidInput
from registry import Registry
from serving.pipeline import ModelPipeline
from tests.unit.batch.batchdata import KEY, REJECTED, edge_rows, oracle_probabilities

CFG = BatchConfig(batch_size=32, fragment_rows=100)


@pytest.fixture
def rows_file(tmp_path) -> str:
    path = str(tmp_path / "rows.parquet")
    pq.write_table(edge_rows(), path, row_group_size=50)
    return path


def run(registry: str, source: str, dest: str, **kwargs):
    return score_in_process("demo:1", source, dest, registry_root=registry, cfg=kwargs.pop("cfg", CFG), **kwargs)


def files_of(root: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(root)): (p.stat().st_mtime_ns, p.stat().st_ino) for p in root.rglob("*") if p.is_file()}


def test_every_row_is_scored_or_rejected_with_its_reason(demo_registry, rows_file, tmp_path):
    summary = run(demo_registry, rows_file, str(tmp_path / "out"))
    assert (summary.rows_in, summary.rows_scored, summary.rows_rejected) == (240, 238, 2)
    assert summary.ok and summary.parts_written == summary.parts_total == 3
    out = pq.read_table(tmp_path / "out").sort_by("_row")
    assert out.column_names == [KEY, "churn", "_row", "prob_stay", "prob_churn", "predicted_label",
                                "model_name", "model_version"]
    kept = [i for i in range(240) if i not in REJECTED]
    assert out.column("_row").to_pylist() == kept
    assert out.column(KEY).to_pylist() == [f"c{i:05d}" for i in kept]
    assert set(out.column("model_name").to_pylist()) == {"demo"} and set(out.column("model_version").to_pylist()) == {1}
    version = Registry(demo_registry).get("demo", 1)
    expected = oracle_probabilities(version, edge_rows().take(kept))
    got = np.column_stack([out.column("prob_stay").to_numpy(), out.column("prob_churn").to_numpy()])
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    assert out.column("predicted_label").to_pylist() == [("stay", "churn")[i] for i in expected.argmax(1)]
    rejects = pq.read_table(tmp_path / "out" / "_rejects").sort_by("_row")
    assert rejects.column_names == [KEY, "churn", "_row", "reason"]
    assert rejects.column("_row").to_pylist() == sorted(REJECTED)
    for row, reason in zip(rejects.column("_row").to_pylist(), rejects.column("reason").to_pylist()):
        assert reason == f"{REJECTED[row]}: non-finite value (infinity) not allowed"


def test_a_rerun_scores_only_the_missing_parts_and_then_changes_nothing(demo_registry, rows_file, tmp_path):
    clean, resumed = tmp_path / "clean", tmp_path / "resumed"
    run(demo_registry, rows_file, str(clean))
    run(demo_registry, rows_file, str(resumed))
    for part in ("part-00000.parquet", "part-00002.parquet"):  # as a run stopped before them would leave it
        (resumed / part).unlink()
    (resumed / "_SUCCESS").unlink()
    (resumed / "_tmp").mkdir()
    (resumed / "_tmp" / "part-00000.parquet.dead").write_bytes(b"half a part")
    untouched = {k: v for k, v in files_of(resumed).items() if "part-00001" in k or k == "_manifest.json"}
    summary = run(demo_registry, rows_file, str(resumed))
    assert (summary.parts_written, summary.parts_skipped, summary.rows_in) == (2, 1, 140)
    after = files_of(resumed)
    assert {k: after[k] for k in untouched} == untouched  # the part already done was not rewritten
    assert set(after) == set(files_of(clean))  # the leftover is gone, nothing else appeared
    for name in files_of(clean):
        if name.endswith(".parquet"):
            assert pq.read_table(resumed / name).equals(pq.read_table(clean / name)), name
    summary = run(demo_registry, rows_file, str(resumed))
    assert (summary.parts_written, summary.rows_in) == (0, 0) and files_of(resumed) == after


class FailsMidway:
    """The real pipeline, failing in the middle of a fragment (as a crash would)."""

    def __init__(self, pipeline: ModelPipeline, fail_on_call: int) -> None:
        self.pipeline, self.calls, self.fail_on_call = pipeline, 0, fail_on_call
        self.name, self.version, self.schema = pipeline.name, pipeline.version, pipeline.schema

    def predict(self, batch):
        self.calls += 1
        if self.calls == self.fail_on_call:
            raise RuntimeError("boom")
        return self.pipeline.predict(batch)


def test_a_fragment_that_fails_midway_leaves_no_part(demo_registry, tmp_path):
    source, dest = str(tmp_path / "rows.parquet"), tmp_path / "out"
    pq.write_table(edge_rows(), source)  # one row group: one 240-row fragment, flushed every 100 rows
    cfg = CFG.model_copy(update={"max_row_group_splits": 1})
    plan = plan_run("demo:1", source, str(dest), registry_root=demo_registry, cfg=cfg)
    pipeline = ModelPipeline(Registry(demo_registry).get("demo", 1), device="cpu")
    result = FragmentScorer(plan.job, FailsMidway(pipeline, fail_on_call=6)).score(plan.pending[0])
    assert result.error == "RuntimeError: boom" and result.rows_in == 6 * 32
    assert list((dest / "_tmp").iterdir()) == []  # 128 rows had reached a temporary file: removed
    assert not (dest / "part-00000.parquet").exists() and not (dest / "_rejects").exists()
    summary = run(demo_registry, source, str(dest), cfg=cfg)
    assert summary.ok and summary.parts_written == 1 and summary.rows_rejected == 2
    assert (dest / "_SUCCESS").exists() and not (dest / "_tmp").exists()


def test_a_fragment_that_cannot_be_read_is_reported_and_the_run_goes_on(demo_registry, tmp_path):
    src = tmp_path / "csv"
    src.mkdir()
    pacsv.write_csv(edge_rows(30), src / "a.csv")
    pacsv.write_csv(edge_rows(2000), src / "b.csv")
    with open(src / "b.csv", "a") as f:
        f.write("c99999,1.0,2.0\n")  # a short line past the first block: found only when read
    cfg = CFG.model_copy(update={"csv_block_bytes": 1 << 16})
    summary = run(demo_registry, str(src), str(tmp_path / "out"), cfg=cfg)
    assert not summary.ok and list(summary.failed) == ["part-00001"]
    assert "ArrowInvalid" in summary.failed["part-00001"] and "failed part-00001" in summary.describe()
    assert (tmp_path / "out" / "part-00000.parquet").exists()
    assert not (tmp_path / "out" / "part-00001.parquet").exists() and not (tmp_path / "out" / "_SUCCESS").exists()


def test_an_input_that_changed_under_its_output_is_refused(demo_registry, rows_file, tmp_path):
    run(demo_registry, rows_file, str(tmp_path / "out"))
    pq.write_table(edge_rows(241), rows_file)
    with pytest.raises(Conflict, match="files"):
        run(demo_registry, rows_file, str(tmp_path / "out"))


def test_explicit_keys_and_generated_ones(demo_registry, rows_file, tmp_path):
    run(demo_registry, rows_file, str(tmp_path / "out"), keys=[KEY])
    out = pq.read_table(tmp_path / "out")
    assert out.column_names[:2] == [KEY, "prob_stay"]
    assert pq.read_table(tmp_path / "out" / "_rejects").column_names == [KEY, "_row", "reason"]
    with pytest.raises(Conflict, match="keys"):
        run(demo_registry, rows_file, str(tmp_path / "out"))
    with pytest.raises(InvalidInput, match="no column 'nope'"):
        run(demo_registry, rows_file, str(tmp_path / "o2"), keys=["nope"])
    clashing = tmp_path / "clash.parquet"
    pq.write_table(edge_rows(10).append_column("predicted_label", pa.array(["x"] * 10)), clashing)
    with pytest.raises(InvalidInput, match="predicted_label"):
        run(demo_registry, str(clashing), str(tmp_path / "o3"))
    missing = tmp_path / "missing.parquet"
    pq.write_table(edge_rows(10).drop_columns(["plan"]), missing)
    with pytest.raises(InvalidInput, match="no column 'plan'"):
        run(demo_registry, str(missing), str(tmp_path / "o4"))


def test_a_directory_of_csv_files_scores_as_its_parquet_twin(demo_registry, tmp_path):
    table = edge_rows(120)
    src = tmp_path / "csv"
    (src / "sub").mkdir(parents=True)
    pacsv.write_csv(table.slice(0, 70), src / "a.csv")
    text = table.slice(70).cast(pa.schema([(n, pa.string()) for n in table.column_names]))
    text = text.set_column(text.column_names.index("income"), "income",
                           pa.array(["lots"] + text.column("income").to_pylist()[1:]))
    pacsv.write_csv(text, src / "sub" / "b.csv")
    (src / "_SUCCESS").write_bytes(b"")
    pq.write_table(table, tmp_path / "twin.parquet")
    summary = run(demo_registry, str(src), str(tmp_path / "out"))
    assert (summary.rows_in, summary.rows_rejected) == (120, 3)
    out = pq.read_table(tmp_path / "out").sort_by([("_file", "ascending"), ("_row", "ascending")])
    assert out.column_names[:4] == [KEY, "churn", "_file", "_row"]
    assert set(out.column("_file").to_pylist()) == {"a.csv", "sub/b.csv"}
    rejects = pq.read_table(tmp_path / "out" / "_rejects")
    assert "sub/b.csv" in rejects.column("_file").to_pylist()
    assert "income: expected a number, got 'lots'" in rejects.column("reason").to_pylist()
    run(demo_registry, str(tmp_path / "twin.parquet"), str(tmp_path / "twin"))
    twin = pq.read_table(tmp_path / "twin").sort_by(KEY)
    ids = set(out.column(KEY).to_pylist())
    twin = twin.filter(pa.compute.is_in(twin.column(KEY), pa.array(sorted(ids))))
    out = out.sort_by(KEY)
    np.testing.assert_allclose(out.column("prob_churn").to_numpy(), twin.column("prob_churn").to_numpy(),
                               rtol=1e-6, atol=1e-7)


def test_input_and_output_may_be_filesystem_uris(demo_registry, rows_file, tmp_path):
    summary = run(demo_registry, f"file://{rows_file}", f"file://{tmp_path}/out")
    assert summary.ok and summary.rows_scored == 238 and summary.dest == f"file://{tmp_path}/out"
    assert pq.read_table(tmp_path / "out").num_rows == 238
    assert run(demo_registry, f"file://{rows_file}", f"file://{tmp_path}/out").parts_written == 0
