"""Fragment planning, the manifest and resume bookkeeping (no Ray, no model)."""

from __future__ import annotations

import random

import pyarrow.fs as pafs
import pytest

from batch import plan
from batch.plan import Fragment, Manifest, plan_fragments
from contracts.errors import Conflict


def ranges(fragments):
    return [(f.file, f.start, f.stop) for f in fragments]


def test_small_row_groups_are_grouped_up_to_the_target():
    frags = plan_fragments([[100, 100, 100, 50]], fragment_rows=250, max_splits=4)
    assert ranges(frags) == [(0, 0, 200), (0, 200, 350)]
    assert [f.part for f in frags] == ["part-00000", "part-00001"]


def test_a_large_row_group_is_cut_into_at_most_max_splits_ranges():
    assert ranges(plan_fragments([[1000]], 250, 4)) == [(0, 0, 250), (0, 250, 500), (0, 500, 750), (0, 750, 1000)]
    assert ranges(plan_fragments([[1000]], 100, 3)) == [(0, 0, 333), (0, 333, 666), (0, 666, 1000)]
    assert ranges(plan_fragments([[10, 1000, 10]], 100, 2)) == [(0, 0, 10), (0, 10, 510), (0, 510, 1010),
                                                                (0, 1010, 1020)]


def test_csv_files_are_read_whole_and_empty_files_still_get_a_part():
    frags = plan_fragments([None, [], [0], None], 100, 4)
    assert ranges(frags) == [(0, 0, None), (1, 0, 0), (2, 0, 0), (3, 0, None)]
    assert frags[0].rows is None and frags[1].rows == 0


def test_fragments_partition_every_file_exactly():
    rng = random.Random(7)
    for _ in range(200):
        files = [[rng.choice([0, 1, 7, 64, 100, 999, 5000]) for _ in range(rng.randint(0, 6))] for _ in range(3)]
        target, splits = rng.choice([1, 50, 100, 4096]), rng.randint(1, 5)
        frags = plan_fragments(files, target, splits)
        for index, groups in enumerate(files):
            mine = [f for f in frags if f.file == index]
            assert mine[0].start == 0 and mine[-1].stop == sum(groups)
            assert all(a.stop == b.start for a, b in zip(mine, mine[1:]))
            assert all(f.rows <= target or f.rows <= max(groups) for f in mine)
        assert len({f.part for f in frags}) == len(frags) == len(set(ranges(frags)))
        assert [f.part for f in frags] == sorted(f.part for f in frags)


def test_part_names_stay_sortable_past_five_digits():
    frags = plan_fragments([[1] * 100_001], 1, 1)
    assert frags[0].part == "part-000000" and frags[-1].part == "part-100000"


def manifest(**change) -> Manifest:
    fields = dict(model={"name": "demo", "version": 1}, source="/data/in", format="parquet",
                  files=[{"name": "a.parquet", "size": 10, "mtime_ns": 5}], keys=["id", "_row"],
                  outputs=["prob_stay", "prob_churn", "predicted_label", "model_name", "model_version"],
                  fragments=[Fragment("part-00000", 0, 0, 5), Fragment("part-00001", 0, 5, 10)])
    return Manifest(**{**fields, **change})


def test_manifest_round_trips():
    m = manifest()
    assert Manifest.from_json(m.to_json()) == m


def test_reconcile_writes_the_plan_once_then_follows_it(tmp_path):
    fs, dest = pafs.LocalFileSystem(), str(tmp_path / "out")
    first = plan.reconcile(fs, dest, manifest())
    written = (tmp_path / "out" / plan.MANIFEST).read_bytes()
    regrouped = manifest(fragments=[Fragment("part-00000", 0, 0, 10)])  # another fragment_rows, say
    assert plan.reconcile(fs, dest, regrouped) == first  # the recorded plan wins: part names stay valid
    assert (tmp_path / "out" / plan.MANIFEST).read_bytes() == written


@pytest.mark.parametrize("change, named", [
    ({"model": {"name": "demo", "version": 2}}, "model"),
    ({"files": [{"name": "a.parquet", "size": 11, "mtime_ns": 5}]}, "files"),
    ({"keys": ["id"]}, "keys"),
    ({"source": "/data/other"}, "source"),
])
def test_reconcile_refuses_an_output_of_another_run(tmp_path, change, named):
    fs, dest = pafs.LocalFileSystem(), str(tmp_path)
    plan.reconcile(fs, dest, manifest())
    with pytest.raises(Conflict, match=named):
        plan.reconcile(fs, dest, manifest(**change))


def test_pending_is_what_has_no_part_yet(tmp_path):
    fs, dest = pafs.LocalFileSystem(), str(tmp_path)
    m = plan.reconcile(fs, dest, manifest(fragments=[Fragment(f"part-{i:05d}", 0, i, i + 1) for i in range(4)]))
    (tmp_path / "part-00001.parquet").write_bytes(b"x")
    (tmp_path / "part-00003.parquet").write_bytes(b"x")
    (tmp_path / plan.TMP_DIR).mkdir()
    (tmp_path / plan.TMP_DIR / "part-00000.parquet.0123").write_bytes(b"half")  # an interrupted write
    (tmp_path / plan.REJECTS_DIR).mkdir()
    (tmp_path / plan.REJECTS_DIR / "part-00002.parquet").write_bytes(b"x")  # rejects alone: not done
    done = plan.done_parts(fs, dest)
    assert done == {"part-00001", "part-00003"}
    assert [f.part for f in plan.pending(m, done)] == ["part-00000", "part-00002"]


def test_finish_drops_leftovers_and_marks_success_once(tmp_path):
    fs, dest = pafs.LocalFileSystem(), str(tmp_path)
    (tmp_path / plan.TMP_DIR).mkdir()
    (tmp_path / plan.TMP_DIR / "part-00000.parquet.0123").write_bytes(b"half")
    plan.finish(fs, dest)
    assert not (tmp_path / plan.TMP_DIR).exists()
    stamp = (tmp_path / plan.SUCCESS).stat().st_mtime_ns
    plan.finish(fs, dest)
    assert (tmp_path / plan.SUCCESS).stat().st_mtime_ns == stamp


@pytest.mark.parametrize("cfg, cluster, available, expected", [
    ({}, {"CPU": 8}, {"CPU": 6}, (6, False)),  # one actor per free CPU
    ({"actor_num_cpus": 2}, {"CPU": 8}, {"CPU": 6}, (3, False)),
    ({}, {"CPU": 8}, {"CPU": 0}, (1, False)),  # a busy cluster still gets one (it waits)
    ({"concurrency": 3}, {"CPU": 8}, {"CPU": 8}, (3, False)),
    ({"concurrency": 50}, {"CPU": 8}, {"CPU": 8}, (10, False)),  # never more actors than fragments
    ({}, {"CPU": 16, "GPU": 2}, {"CPU": 16, "GPU": 2}, (2, True)),  # GPUs: one actor per GPU
    ({"gpu": False}, {"CPU": 4, "GPU": 2}, {"CPU": 4, "GPU": 2}, (4, False)),
])
def test_pool_size(cfg, cluster, available, expected):
    from batch.config import BatchConfig
    from batch.pool import pool_size

    assert pool_size(BatchConfig(**cfg), 10, cluster, available) == expected


def test_asking_for_gpus_on_a_cluster_without_them_fails():
    from batch.config import BatchConfig
    from batch.pool import pool_size
    from contracts.errors import InvalidInput

    with pytest.raises(InvalidInput, match="--gpu"):
        pool_size(BatchConfig(gpu=True), 10, {"CPU": 8}, {"CPU": 8})
