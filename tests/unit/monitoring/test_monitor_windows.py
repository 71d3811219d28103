"""Windows by time and by rows, tumbling and sliding, merged from per-bucket kernel windows."""

from __future__ import annotations

import numpy as np
import pytest

from kernels import ReferenceProfile
from monitoring.config import WindowConfig
from monitoring.reference import VersionContext
from monitoring.windows import US, VersionWindows, WindowSpec
from registry.schema import FeatureSpec, ModelSchema, OutputSpec

SCHEMA = ModelSchema(kind="tabular", task="regression", inputs=(FeatureSpec(name="x", datatype="FP64"),
                     FeatureSpec(name="c", datatype="BYTES", categorical=True)),
                     outputs=(OutputSpec(name="prediction", datatype="FP32"),))


@pytest.fixture(scope="module")
def ctx() -> VersionContext:
    rng = np.random.default_rng(0)
    ref = {"x": rng.normal(size=5000), "c": rng.choice(np.array(["a", "b", "c"], dtype=object), 5000)}
    return VersionContext("m", "1", SCHEMA, ReferenceProfile.fit(ref, categorical=["c"]), None)


def rows(n: int, seed: int, shift: float = 0.0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {"x": rng.normal(shift, 1.0, n), "c": rng.choice(np.array(["a", "b", "c", "z"], dtype=object), n)}


def test_spec_from_config():
    assert WindowSpec.from_config(WindowConfig(size_s=60)) == WindowSpec("time", 60 * US, 60 * US, 30 * US)
    assert WindowSpec.from_config(WindowConfig(by="rows", size_rows=100, slide_rows=25)).k == 4
    with pytest.raises(ValueError, match="multiple"):
        WindowConfig(size_s=60, slide_s=25)
    with pytest.raises(ValueError, match="multiple"):
        WindowConfig(by="rows", size_rows=100, slide_rows=30)


def test_tumbling_time_windows_wait_for_grace(ctx):
    vw = VersionWindows(ctx, WindowSpec("time", 10 * US, 10 * US, 2 * US))
    ts = np.arange(0, 30 * US, US // 10, dtype=np.int64)  # 10 rows a second for 30 s
    vw.add(ts, rows(ts.size, 1), None)
    assert vw.emit(now_us=11 * US) == []  # window [0, 10) ends at 10 s; grace 2 s
    first = vw.emit(now_us=12 * US)
    assert [(w.start_us, w.end_us, w.rows) for w in first] == [(0, 10 * US, 100)]
    later = vw.emit(now_us=40 * US)
    assert [(w.start_us // US, w.end_us // US, w.rows) for w in later] == [(10, 20, 100), (20, 30, 100)]
    assert vw.buckets == {}  # every bucket released


def test_sliding_time_windows_share_buckets_exactly(ctx):
    vw = VersionWindows(ctx, WindowSpec("time", 20 * US, 10 * US))
    data = rows(300, 2)
    ts = np.arange(300, dtype=np.int64) * (US // 10)  # 30 s of rows
    vw.add(ts, data, None)
    windows = vw.emit(now_us=31 * US)
    assert [(w.start_us // US, w.end_us // US, w.rows) for w in windows] == [(-10, 10, 100), (0, 20, 200),
                                                                            (10, 30, 200)]
    middle = windows[1]
    expect = ctx.profile.score({k: v[:200] for k, v in data.items()})
    got = ctx.profile.score(middle.inputs)
    np.testing.assert_array_equal(got.pvalue, expect.pvalue)
    np.testing.assert_array_equal(got.numeric.wasserstein, expect.numeric.wasserstein)
    np.testing.assert_array_equal(got.categorical.chi2, expect.categorical.chi2)


def test_segments_split_across_buckets_equal_one_batch(ctx):
    data, ts = rows(500, 3), np.arange(500, dtype=np.int64) * (US // 20)
    whole = VersionWindows(ctx, WindowSpec("time", 10 * US, 10 * US))
    whole.add(ts, data, None)
    parts = VersionWindows(ctx, WindowSpec("time", 10 * US, 10 * US))
    for cut in np.array_split(np.arange(500), 7):
        parts.add(ts[cut], {k: v[cut] for k, v in data.items()}, None)
    a, b = whole.emit(now_us=100 * US), parts.emit(now_us=100 * US)
    assert [w.rows for w in a] == [w.rows for w in b] == [200, 200, 100]
    for wa, wb in zip(a, b):
        np.testing.assert_array_equal(ctx.profile.score(wa.inputs).pvalue, ctx.profile.score(wb.inputs).pvalue)


def test_row_windows_tumbling_and_sliding(ctx):
    vw = VersionWindows(ctx, WindowSpec("rows", 100, 50))
    ts = np.arange(230, dtype=np.int64)
    vw.add(ts[:120], {k: v[:120] for k, v in rows(230, 4).items()}, None)
    assert [w.rows for w in vw.emit()] == [100]  # rows 0..99; 100..119 wait for their bucket to fill
    vw.add(ts[120:], {k: v[120:] for k, v in rows(230, 4).items()}, None)
    assert [(w.end_index, w.rows) for w in vw.emit()] == [(2, 100), (3, 100)]
    assert vw.next_row == 230
    assert [(w.end_index, w.rows) for w in vw.emit(final=True)] == [(4, 80)]  # 150..229, offline only


def test_late_rows_are_counted_not_scored(ctx):
    vw = VersionWindows(ctx, WindowSpec("time", 10 * US, 10 * US))
    vw.add(np.array([1 * US, 2 * US]), rows(2, 5), None)
    assert [w.rows for w in vw.emit(now_us=12 * US)] == [2]
    added = vw.add(np.array([3 * US, 15 * US]), rows(2, 6), None)
    assert added.late.tolist() == [True, False] and added.buckets.tolist() == [0, 1]
    assert [w.rows for w in vw.emit(now_us=30 * US)] == [1]


def test_idle_time_releases_windows(ctx):
    vw = VersionWindows(ctx, WindowSpec("time", 10 * US, 10 * US))
    assert vw.emit(now_us=100 * US) == []
    assert vw.emitted_through == 9  # windows up to [90, 100) are past: rows for them are late
    assert vw.add(np.array([95 * US]), rows(1, 7), None).late_rows == 1


def test_whole_range_window(ctx):
    vw = VersionWindows(ctx, WindowSpec.whole())
    vw.add(np.array([5, 1, 9]), rows(3, 8), None)
    assert vw.emit() == []
    (w,) = vw.emit(final=True)
    assert w.rows == 3
