"""The p-value functions against scipy's distributions."""

import warnings

import numpy as np
import pytest
import scipy.stats as ss
from numpy.testing import assert_allclose

import kernels
from kernels import inner


@pytest.mark.parametrize("n", [1, 2, 3, 5, 10, 37, 140, 141, 500, 4000, 40000])
def test_kolmogorov_sf_matches_scipy_kstwo(n):
    # scipy's kstwo is slow for large n (seconds per point), so the grid thins out
    points = 60 if n <= 500 else 12
    xs = np.concatenate([np.linspace(0.0, 1.0, points), np.sqrt(np.linspace(0.01, 6, points) / n)])
    xs = xs[xs <= 1.0]
    got = np.array([inner.kolmogorov_sf(x, n) for x in xs])
    expected = ss.kstwo.sf(xs, n)
    assert np.all((got >= 0) & (got <= 1))
    assert np.max(np.abs(got - expected)) < 2e-4


@pytest.mark.parametrize("n_a,n_b", [(7, 7), (6, 9), (20, 13), (40, 40), (250, 99)])
def test_exact_two_sample_pvalue_matches_scipy_across_statistics(n_a, n_b):
    ref = np.arange(n_a) / n_a
    for shift in np.linspace(-1.05, 1.05, 43):
        cur = np.arange(n_b) / n_b + shift
        got = kernels.ks_2samp(ref, cur)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            expected = ss.ks_2samp(ref, cur)
        if caught:  # scipy's exact sum overshot 1 by a rounding error; it fell back to asymp
            assert abs(got.pvalue - expected.pvalue) <= 2e-3
            continue
        assert abs(got.statistic - expected.statistic) <= 1e-12
        assert_allclose(got.pvalue, expected.pvalue, rtol=1e-9, atol=1e-15)


@pytest.mark.parametrize("dof", [1, 2, 3, 7, 30, 200, 1999])
def test_chi2_sf_matches_scipy(dof):
    xs = np.concatenate([[0.0, 1e-6, 0.5], np.linspace(0.1, 4, 40) * dof, [dof * 30.0]])
    got = np.array([inner.chi2_sf(x, dof) for x in xs])
    assert_allclose(got, ss.chi2.sf(xs, dof), rtol=1e-9, atol=1e-300)
