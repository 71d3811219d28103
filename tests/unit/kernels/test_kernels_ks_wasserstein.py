"""KS and Wasserstein against scipy.stats on seeded data."""

import zlib

import numpy as np
import pytest
import scipy.stats as ss
from numpy.testing import assert_allclose

import kernels
from kernels import inner


def _samples(rng, n_ref, n_cur, kind, shift):
    if kind == "ties":
        ref = rng.integers(0, 25, n_ref).astype(np.float64)
        cur = rng.integers(0, 25, n_cur).astype(np.float64) + np.round(shift)
    elif kind == "rounded":
        ref = np.round(rng.normal(size=n_ref), 1)
        cur = np.round(rng.normal(shift, 1.3, size=n_cur), 1)
    else:
        ref = rng.normal(size=n_ref)
        cur = rng.normal(shift, 1.0, size=n_cur)
    return ref, cur


CASES = [
    (n_ref, n_cur, kind, shift)
    for n_ref, n_cur in [(1, 1), (2, 7), (30, 30), (50, 81), (400, 1000), (3000, 2999),
                         (12000, 900), (20000, 15000), (60000, 11)]
    for kind in ("continuous", "ties", "rounded")
    for shift in (0.0, 0.15, 2.0)
]  # fmt: skip


@pytest.mark.parametrize("n_ref,n_cur,kind,shift", CASES)
def test_ks_and_wasserstein_match_scipy(n_ref, n_cur, kind, shift):
    rng = np.random.default_rng(zlib.crc32(repr((n_ref, n_cur, kind, shift)).encode()))
    ref, cur = _samples(rng, n_ref, n_cur, kind, shift)
    expected = ss.ks_2samp(ref, cur)
    got = kernels.ks_2samp(ref, cur)
    assert abs(got.statistic - expected.statistic) <= 1e-12
    assert abs(got.pvalue - expected.pvalue) <= 2e-3
    assert (got.pvalue < 0.05) == (expected.pvalue < 0.05)
    assert_allclose(
        kernels.wasserstein(ref, cur), ss.wasserstein_distance(ref, cur), rtol=1e-12, atol=1e-15
    )


def test_ks_pvalue_is_tight_where_scipy_is_exact():
    rng = np.random.default_rng(7)
    for n_ref, n_cur in [(10, 10), (25, 40), (700, 300), (5000, 5000), (9999, 10000)]:
        ref, cur = rng.normal(size=n_ref), rng.normal(0.1, 1, size=n_cur)
        assert_allclose(
            kernels.ks_2samp(ref, cur).pvalue, ss.ks_2samp(ref, cur).pvalue, rtol=1e-9, atol=1e-14
        )


@pytest.mark.parametrize("method", ["exact", "asymp"])
def test_ks_methods_match_scipy(method):
    rng = np.random.default_rng(3)
    ref, cur = rng.normal(size=300), rng.normal(0.2, 1, size=170)
    got = kernels.ks_2samp(ref, cur, method=method)
    expected = ss.ks_2samp(ref, cur, method=method)
    assert abs(got.pvalue - expected.pvalue) <= 2e-3


def test_wasserstein_with_large_offset_and_symmetry():
    rng = np.random.default_rng(11)
    ref, cur = 1e6 + rng.normal(size=5000), 1e6 + rng.normal(0.01, 1, size=3000)
    assert_allclose(kernels.wasserstein(ref, cur), ss.wasserstein_distance(ref, cur), rtol=1e-12)
    assert kernels.ks_2samp(ref, cur).statistic == kernels.ks_2samp(cur, ref).statistic


def test_wasserstein_norm_divides_by_reference_population_std():
    rng = np.random.default_rng(5)
    ref, cur = rng.normal(3, 2, size=4000), rng.normal(3.5, 2, size=1000)
    expected = ss.wasserstein_distance(ref, cur) / np.std(ref)
    assert_allclose(kernels.wasserstein_norm(ref, cur), expected, rtol=1e-12)


def test_float32_input_is_upcast_exactly():
    rng = np.random.default_rng(9)
    ref32, cur32 = rng.normal(size=2000).astype(np.float32), rng.normal(size=700).astype(np.float32)
    ref64, cur64 = ref32.astype(np.float64), cur32.astype(np.float64)
    assert kernels.ks_2samp(ref32, cur32) == kernels.ks_2samp(ref64, cur64)
    assert_allclose(
        kernels.wasserstein(ref32, cur32), ss.wasserstein_distance(ref64, cur64), rtol=1e-12
    )


def test_missing_values_are_counted_not_ranked():
    rng = np.random.default_rng(2)
    ref, cur = rng.normal(size=500), rng.normal(size=300)
    dirty = np.concatenate([cur, [np.nan, np.inf, -np.inf, np.nan]])
    got = kernels.ks_2samp(ref, dirty)
    assert (got.statistic, got.pvalue) == tuple(kernels.ks_2samp(ref, cur))
    assert (got.n_cur, got.n_missing_cur, got.n_missing_ref) == (300, 4, 0)
    assert kernels.wasserstein(ref, dirty) == kernels.wasserstein(ref, cur)


def test_empty_and_constant_samples_are_defined():
    assert tuple(kernels.ks_2samp([], [1.0, 2.0])) == (0.0, 1.0)
    assert tuple(kernels.ks_2samp([np.nan], [1.0])) == (0.0, 1.0)
    assert kernels.wasserstein([], [1.0]) == 0.0
    const = np.full(100, 3.0)
    assert tuple(kernels.ks_2samp(const, const)) == (0.0, 1.0)
    assert kernels.wasserstein_norm(const, const) == 0.0
    assert kernels.wasserstein_norm(const, const + 1) == np.inf
    assert kernels.ks_2samp(const, const + 1).statistic == 1.0


def test_inner_walks_agree_with_the_merge_kernel():
    rng = np.random.default_rng(4)
    ref, cur = np.sort(rng.normal(size=3000)), np.sort(np.round(rng.normal(size=1200), 2))
    assert inner.ks_statistic_sorted(ref, cur) == pytest.approx(
        kernels.ks_2samp(ref, cur).statistic, abs=1e-15
    )
    assert_allclose(
        inner.wasserstein_sorted(ref, cur), ss.wasserstein_distance(ref, cur), rtol=1e-12
    )
