"""ReferenceProfile and Window: same numbers as the single-column functions, exact merges."""

import numpy as np
import pytest
import scipy.stats as ss
from numba import njit, prange
from numpy.testing import assert_allclose, assert_array_equal

import kernels
from kernels import inner


def make_columns(rng, rows, shift=0.0):
    x = rng.normal(shift, 1, size=rows)
    x[rng.uniform(size=rows) < 0.02] = np.nan
    return {
        "x": x,
        "ties": np.round(rng.exponential(2.0 + shift, size=rows)),
        "f32": rng.normal(shift, 3, size=rows).astype(np.float32),
        "const": np.full(rows, 1.5),
        "colour": rng.choice(np.array(["red", "green", "blue"] + ["teal"] * (shift > 0)), rows),
        "code": rng.integers(0, 5 + 2 * (shift > 0), size=rows),
    }


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(42)
    return make_columns(rng, 20_000), make_columns(rng, 6_000, shift=0.3)


@pytest.fixture(scope="module")
def profile(data):
    return kernels.ReferenceProfile.fit(data[0], categorical=["code"])


def test_profile_scores_equal_the_single_column_functions(profile, data):
    ref, cur = data
    report = profile.score(cur)
    num = report.numeric
    assert num.names == ("x", "ties", "f32", "const")
    for i, name in enumerate(num.names):
        ks = kernels.ks_2samp(ref[name], cur[name])
        assert (num.ks_statistic[i], num.ks_pvalue[i]) == tuple(ks)
        assert_allclose(num.wasserstein[i], kernels.wasserstein(ref[name], cur[name]), rtol=1e-13)
        assert_allclose(num.psi[i], kernels.psi(ref[name], cur[name]), rtol=1e-13)
        assert_allclose(
            num.jensen_shannon[i], kernels.jensen_shannon(ref[name], cur[name]), rtol=1e-13
        )
    finite = np.isfinite(ref["x"])
    assert num.missing_share_ref[0] == pytest.approx(1 - finite.mean())
    assert_allclose(
        num.wasserstein_norm[0], num.wasserstein[0] / np.std(ref["x"][finite]), rtol=1e-12
    )
    cat = report.categorical
    assert cat.names == ("colour", "code")
    for i, name in enumerate(cat.names):
        assert (cat.chi2[i], cat.chi2_pvalue[i]) == tuple(
            kernels.chi2_categorical(ref[name], cur[name])
        )
    assert cat.unseen_share_cur[0] == pytest.approx(np.mean(cur["colour"] == "teal"))


def test_verdict_uses_corrected_pvalues(profile, data):
    report = profile.score(data[1], alpha=0.05, correction="bonferroni")
    evaluated_p = report.pvalue[report.evaluated]
    assert_allclose(
        report.pvalue_adjusted[report.evaluated], np.minimum(evaluated_p * evaluated_p.size, 1)
    )
    assert_array_equal(report.drifted, report.evaluated & (report.pvalue_adjusted < 0.05))
    assert report.drifted_share == pytest.approx(report.drifted.sum() / report.evaluated.sum())
    rows = report.to_rows()
    assert [r["feature"] for r in rows] == list(report.features)
    assert rows[3]["feature"] == "const" and rows[3]["drifted"] is False


def test_windows_merge_exactly(profile, data):
    cur = data[1]
    one_shot = profile.score(cur)
    segments = [
        {k: v[a:b] for k, v in cur.items()}
        for a, b in [(0, 1000), (1000, 1001), (1001, 4500), (4500, 6000)]
    ]
    left = profile.new_window().partial_fit(segments[0]).partial_fit(segments[1])
    right = profile.new_window().partial_fit(segments[2])
    right.partial_fit(segments[3])
    merged = left.merge(right)
    assert merged.n_rows == 6000
    for _ in range(2):  # scoring compacts the window; a second score is unchanged
        report = merged.score()
        for table in ("numeric", "categorical"):
            for field, expected in vars(getattr(one_shot, table)).items():
                got = getattr(getattr(report, table), field)
                assert got == expected if field == "names" else np.array_equal(got, expected), field


def test_save_load_round_trip(profile, data, tmp_path):
    arrays = profile.to_arrays()
    assert all(isinstance(v, np.ndarray) and v.dtype != object for v in arrays.values())
    profile.save(tmp_path / "reference.npz")
    loaded = kernels.ReferenceProfile.load(tmp_path / "reference.npz")
    assert loaded.features == profile.features and loaded.bins == profile.bins
    a, b = profile.score(data[1]), loaded.score(data[1])
    assert_array_equal(a.pvalue, b.pvalue)
    assert_array_equal(a.numeric.wasserstein, b.numeric.wasserstein)
    with pytest.raises(ValueError, match="lack"):
        kernels.ReferenceProfile.from_arrays(
            {k: v for k, v in arrays.items() if k != "numeric.edges"}
        )


def test_empty_tiny_and_missing_windows_are_defined(profile, data):
    empty = profile.new_window().score()
    assert not empty.evaluated.any() and not empty.dataset_drift
    assert np.all(empty.pvalue == 1.0) and np.all(empty.numeric.wasserstein == 0.0)
    tiny = profile.score({k: v[:1] for k, v in data[1].items()})
    assert np.all(np.isfinite(tiny.pvalue)) and np.all(np.isfinite(tiny.numeric.psi))
    all_nan = dict(data[1], x=np.full(50, np.nan), ties=np.arange(50.0))
    all_nan = {k: v[:50] for k, v in all_nan.items()}
    report = profile.score(all_nan)
    assert report.numeric.missing_share_cur[0] == 1.0 and not report.evaluated[0]
    with pytest.raises(ValueError, match="lacks feature"):
        profile.new_window().partial_fit({"x": np.zeros(3)})


def test_score_binned_equals_the_binned_part_of_score(profile, data):
    binned = profile.score_binned(data[1])
    full = profile.score(data[1]).numeric
    assert_allclose(binned.psi, full.psi, rtol=1e-13)
    assert_allclose(binned.jensen_shannon, full.jensen_shannon, rtol=1e-13)
    assert_array_equal(binned.n_cur, full.n_cur)


@njit(parallel=True, cache=True)
def user_kernel(ref_rows, cur_rows, edges, out):
    """A user's own parallel loop over features built from the inner functions."""
    for f in prange(ref_rows.shape[0]):
        a, b = ref_rows[f], cur_rows[f]
        d = inner.ks_statistic_sorted(a, b)
        out[f, 0] = d
        out[f, 1] = inner.ks_pvalue(d, a.size, b.size)
        out[f, 2] = inner.wasserstein_sorted(a, b)
        rc = np.zeros(edges.shape[1] + 1, dtype=np.int64)
        cc = np.zeros(edges.shape[1] + 1, dtype=np.int64)
        inner.bin_counts_sorted(a, edges[f], rc)
        inner.bin_counts(b, edges[f], cc)
        out[f, 3] = inner.psi_from_counts(rc, cc, 1e-4)


def test_inner_functions_run_inside_a_user_parallel_njit():
    rng = np.random.default_rng(1)
    ref = np.sort(rng.normal(size=(4, 3000)), axis=1)
    cur = np.sort(rng.normal(0.1, 1, size=(4, 1000)), axis=1)
    edges = np.array([inner.quantile_edges_sorted(r, 10) for r in ref])
    out = np.zeros((4, 4))
    user_kernel(ref, cur, edges, out)
    for f in range(4):
        expected = ss.ks_2samp(ref[f], cur[f])
        assert abs(out[f, 0] - expected.statistic) <= 1e-12
        assert abs(out[f, 1] - expected.pvalue) <= 2e-3
        assert_allclose(out[f, 2], ss.wasserstein_distance(ref[f], cur[f]), rtol=1e-12)
        assert_allclose(out[f, 3], kernels.psi(ref[f], cur[f]), rtol=1e-12)
