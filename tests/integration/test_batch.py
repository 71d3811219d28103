"""Batch scoring on a real local Ray: the actor pool, resume and idempotence (issue 6)."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest

from batch.config import BatchConfig
from batch.run import score, score_in_process
from tests.unit.batch.batchdata import edge_rows

pytestmark = pytest.mark.integration

CFG = BatchConfig(batch_size=64, fragment_rows=100, concurrency=2)


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(root)): (p.stat().st_mtime_ns, p.stat().st_ino) for p in root.rglob("*") if p.is_file()}


def test_the_actor_pool_writes_what_a_single_process_writes_and_resumes(ray_session, demo_registry, tmp_path):
    source = str(tmp_path / "rows.parquet")
    pq.write_table(edge_rows(600), source, row_group_size=100)
    kwargs = dict(registry_root=demo_registry, cfg=CFG)
    reference = score_in_process("demo:1", source, str(tmp_path / "reference"), **kwargs)
    out = tmp_path / "ray"

    summary = score("demo:1", source, str(out), progress=False, **kwargs)
    assert summary.ok and summary.parts_written == 6 and summary.rows_rejected == reference.rows_rejected == 2
    assert summary.peak_actor_rss_bytes > 0 and summary.scoring_seconds > 0
    assert snapshot(out).keys() == snapshot(tmp_path / "reference").keys()
    for part in sorted(p.name for p in out.glob("part-*.parquet")):
        assert pq.read_table(out / part).equals(pq.read_table(tmp_path / "reference" / part)), part

    for name in ("part-00001.parquet", "part-00004.parquet", "_SUCCESS"):  # an interrupted run's output
        (out / name).unlink()
    before = snapshot(out)
    summary = score("demo:1", source, str(out), progress=False, **kwargs)
    assert (summary.parts_written, summary.parts_skipped, summary.rows_in) == (2, 4, 200)
    after = snapshot(out)
    assert {k: after[k] for k in before if "part-00001" not in k and "part-00004" not in k} == \
        {k: v for k, v in before.items() if "part-00001" not in k and "part-00004" not in k}
    assert pq.read_table(out).sort_by("_row").equals(pq.read_table(tmp_path / "reference").sort_by("_row"))

    summary = score("demo:1", source, str(out), progress=False, **kwargs)  # finished: nothing to do
    assert (summary.parts_written, summary.rows_in) == (0, 0) and snapshot(out) == after
