"""The radix sort against np.sort, and the single-column functions' shared sorting."""

import numpy as np
import pytest
import scipy.stats as ss
from numpy.testing import assert_array_equal

import kernels
from kernels import inner


def _radix_sorted(x):
    out = np.array(x, dtype=np.float64)
    inner.radix_sort(out, np.empty(out.size, dtype=np.uint64))
    return out


def _cases():
    rng = np.random.default_rng(21)
    normal = rng.normal(size=5000)
    yield "empty", np.zeros(0)
    yield "one", np.array([3.5])
    yield "one nan", np.array([np.nan])
    yield "small", rng.normal(size=17)
    yield "small with nan", np.array([2.0, np.nan, -1.0, -np.nan, 0.0, -0.0, np.inf, -np.inf])
    yield "special values", np.tile([np.nan, -0.0, 0.0, np.inf, -np.inf, -np.nan, 1e-310, -5e-324], 40)
    yield "normal", normal
    yield "already sorted", np.sort(normal)
    yield "reversed", np.sort(normal)[::-1].copy()
    yield "all equal", np.full(3000, -2.25)
    yield "all zero both signs", np.where(rng.random(3000) < 0.5, -0.0, 0.0)
    yield "ties", rng.integers(-30, 30, 20000).astype(np.float64)
    yield "rounded", np.round(rng.normal(size=20000), 1)
    yield "log-normal", np.exp(rng.normal(size=20000) * 3)
    yield "narrow range", 1.0 + rng.normal(size=20000) * 1e-13
    yield "narrow with outlier", np.append(1.0 + rng.normal(size=20000) * 1e-13, -1e300)
    u = rng.random(20000)
    values = np.where(u < 0.1, np.nan, np.where(u > 0.95, np.inf, rng.normal(size=20000)))
    yield "nan and inf mixed", np.where(u < 0.02, -np.inf, values)
    yield "huge and tiny", rng.choice([-1, 1], 9000) * 10.0 ** rng.uniform(-300, 300, 9000)
    yield "float32 range", rng.normal(size=9000).astype(np.float32).astype(np.float64)


@pytest.mark.parametrize("name,x", list(_cases()), ids=[name for name, _ in _cases()])
def test_radix_sort_matches_np_sort(name, x):
    got = _radix_sorted(x)
    expected = np.sort(x)
    assert_array_equal(got, expected)  # NaN at the same places, -0.0 == 0.0
    assert np.array_equal(np.signbit(got[got != 0]), np.signbit(expected[expected != 0]))


def test_radix_sort_every_length_up_to_200():
    rng = np.random.default_rng(3)
    for n in range(200):
        x = np.round(rng.normal(size=n), 2)
        assert_array_equal(_radix_sorted(x), np.sort(x))


def test_single_column_functions_see_in_place_changes():
    rng = np.random.default_rng(8)
    ref, cur = rng.normal(size=3000), rng.normal(size=2000)
    assert kernels.ks_2samp(ref, cur).statistic == ss.ks_2samp(ref, cur).statistic
    cur += 0.5  # same array object, new values: the kept sorted copy must not be used
    assert kernels.ks_2samp(ref, cur).statistic == ss.ks_2samp(ref, cur).statistic
    cur[:100] = np.nan
    expected = ss.wasserstein_distance(ref, cur[100:])
    assert abs(kernels.wasserstein(ref, cur) - expected) <= 1e-12 * expected
