"""PSI, Jensen-Shannon and histograms against plain numpy (and scipy) on the same bins."""

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from scipy.spatial.distance import jensenshannon

import kernels


def numpy_edges(ref, bins):
    """The documented rule, written independently: unique quantiles, extra edge below a mass."""
    ref = ref[np.isfinite(ref)]
    edges = np.unique(np.quantile(ref, np.arange(1, bins) / bins))
    if edges[0] == ref.min():
        edges = np.concatenate([[np.nextafter(edges[0], -np.inf)], edges])
    return edges


def numpy_counts(x, edges):
    x = x[np.isfinite(x)]
    return np.bincount(np.searchsorted(edges, x, side="left"), minlength=edges.size + 1)


def numpy_psi(ref, cur, bins, eps=1e-4):
    edges = numpy_edges(ref, bins)
    p = np.maximum(numpy_counts(ref, edges) / np.isfinite(ref).sum(), eps)
    q = np.maximum(numpy_counts(cur, edges) / np.isfinite(cur).sum(), eps)
    return np.sum((q - p) * np.log(q / p))


def numpy_js(ref, cur, bins, base):
    edges = numpy_edges(ref, bins)
    p = numpy_counts(ref, edges) / np.isfinite(ref).sum()
    q = numpy_counts(cur, edges) / np.isfinite(cur).sum()
    m = (p + q) / 2
    return np.sqrt((kl_to(p, m) + kl_to(q, m)) / 2 / np.log(base))


def kl_to(u, m):
    """sum u * ln(u / m) with 0 * ln 0 = 0."""
    return np.sum(u * np.log(np.where(u > 0, u, 1.0) / np.where(u > 0, m, 1.0)))


def _data(seed):
    rng = np.random.default_rng(seed)
    return [
        (rng.normal(size=5000), rng.normal(0.3, 1.2, size=2000)),
        (rng.exponential(size=3000), rng.exponential(2.0, size=800)),  # empty-ish top bins
        (np.round(rng.normal(size=4000)), np.round(rng.normal(0.5, 1, size=900))),  # ties
        (np.maximum(rng.normal(size=4000), 0.0), rng.normal(-0.5, 1, size=900)),  # mass at min
        (np.concatenate([np.zeros(900), rng.normal(size=100)]), rng.normal(size=500)),
        (rng.normal(size=50), rng.normal(5, 1, size=7)),  # tiny, far apart
    ]


@pytest.mark.parametrize("bins", [2, 5, 10, 20])
def test_edges_follow_the_documented_rule(bins):
    for ref, _ in _data(1):
        assert_array_equal(kernels.quantile_edges(ref, bins), numpy_edges(ref, bins))


@pytest.mark.parametrize("bins", [2, 10, 17])
def test_psi_and_js_equal_numpy_on_the_same_bins(bins):
    for ref, cur in _data(bins):
        assert_allclose(kernels.psi(ref, cur, bins=bins), numpy_psi(ref, cur, bins), rtol=1e-12)
        for base in (2, np.e, 10):
            expected = numpy_js(ref, cur, bins, base)
            assert_allclose(
                kernels.jensen_shannon(ref, cur, bins, base), expected, rtol=1e-12, atol=1e-15
            )


def test_js_equals_scipy_jensenshannon_on_bin_counts():
    ref, cur = _data(3)[0]
    edges = numpy_edges(ref, 10)
    expected = jensenshannon(numpy_counts(ref, edges), numpy_counts(cur, edges), base=2)
    assert_allclose(kernels.jensen_shannon(ref, cur), expected, rtol=1e-12)


@pytest.mark.parametrize("bins", [2, 3, 4, 5, 9, 10, 13, 20])
def test_streaming_histogram_counts_missing_apart(bins):
    rng = np.random.default_rng(8)
    x = rng.normal(size=10_001)
    x[3000::97] = np.nan  # the first blocks stay finite (fast path), later ones do not
    x[3000::101] = np.inf
    x[3000::103] = -np.inf
    edges = numpy_edges(rng.normal(size=999), bins)
    for values in (x, x.astype(np.float32), x[::3]):  # float32 and a strided view
        counts, n_missing = kernels.histogram(values, edges)
        assert_array_equal(counts, numpy_counts(values.astype(np.float64), edges))
        assert n_missing == np.sum(~np.isfinite(values))


@pytest.mark.parametrize("size", [1, 5, 8, 13, 2048, 2053])
def test_streaming_histogram_tail_and_short_columns(size):
    rng = np.random.default_rng(size)
    x = np.round(rng.normal(size=size), 1)
    x[-1] = np.nan  # a missing value in the last, partial vector
    x[: size // 2 : 3] = -np.inf
    edges = numpy_edges(rng.normal(size=500), 10)
    counts, n_missing = kernels.histogram(x, edges)
    assert_array_equal(counts, numpy_counts(x, edges))
    assert n_missing == np.sum(~np.isfinite(x))


def test_values_on_an_edge_go_to_the_lower_bin():
    counts, _ = kernels.histogram(np.array([1.0, 2.0, 2.0, 3.0, 9.0]), np.array([1.0, 2.0, 3.0]))
    assert_array_equal(counts, [1, 2, 1, 1])


def test_identical_and_degenerate_samples():
    rng = np.random.default_rng(6)
    ref = rng.normal(size=1000)
    assert kernels.psi(ref, ref) == 0.0
    assert kernels.jensen_shannon(ref, ref) == 0.0
    assert kernels.psi(ref, []) == 0.0 and kernels.jensen_shannon([], ref) == 0.0
    const = np.full(200, 4.0)
    assert kernels.psi(const, const) == 0.0
    below, above = kernels.psi(const, const - 1), kernels.psi(const, const + 1)
    assert below == pytest.approx(above) and below > 5  # both directions are seen
    assert kernels.jensen_shannon(const, const + 1) == pytest.approx(1.0)
    with pytest.raises(ValueError):
        kernels.psi(ref, ref, bins=1)
