"""Categorical statistics against scipy.stats.chi2_contingency and plain numpy."""

import numpy as np
import pytest
import scipy.stats as ss
from numpy.testing import assert_allclose, assert_array_equal

import kernels


def oracle_table(ref, cur):
    """2 x C table: reference vocabulary, unseen pooled in one column, empty columns dropped."""
    vocab = np.unique(ref)
    cur_known = np.isin(cur, vocab)
    ref_row = np.array([np.sum(ref == v) for v in vocab] + [0])
    cur_row = np.array([np.sum(cur == v) for v in vocab] + [np.sum(~cur_known)])
    keep = (ref_row + cur_row) > 0
    return np.vstack([ref_row, cur_row])[:, keep], ref_row, cur_row


def kl_to(u, m):
    """sum u * ln(u / m) with 0 * ln 0 = 0."""
    return np.sum(u * np.log(np.where(u > 0, u, 1.0) / np.where(u > 0, m, 1.0)))


def _pairs(seed):
    rng = np.random.default_rng(seed)
    p = rng.dirichlet(np.ones(12))
    return [
        (rng.choice(12, 5000, p=p), rng.choice(12, 1500, p=p)),
        (rng.choice(12, 5000, p=p), rng.choice(15, 900)),  # three unseen codes
        (rng.choice(3, 40), rng.choice(3, 9)),
        (rng.choice(2, 300), rng.choice(2, 300, p=[0.4, 0.6])),  # dof 1, no Yates
        (rng.choice(np.array(["a", "bb", "c"]), 700), rng.choice(np.array(["a", "c", "zz"]), 300)),
    ]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_chi2_matches_scipy_chi2_contingency_without_correction(seed):
    for ref, cur in _pairs(seed):
        table, _, _ = oracle_table(ref, cur)
        expected = ss.chi2_contingency(table, correction=False)
        got = kernels.chi2_categorical(ref, cur)
        assert_allclose(got.statistic, expected.statistic, rtol=1e-9)
        assert_allclose(got.pvalue, expected.pvalue, rtol=1e-9, atol=1e-300)


def test_psi_and_js_on_shares_equal_numpy():
    for ref, cur in _pairs(4):
        _, ref_row, cur_row = oracle_table(ref, cur)
        p, q = ref_row / ref_row.sum(), cur_row / cur_row.sum()
        pe, qe = np.maximum(p, 1e-4), np.maximum(q, 1e-4)
        assert_allclose(
            kernels.psi_categorical(ref, cur), np.sum((qe - pe) * np.log(qe / pe)), rtol=1e-12
        )
        m = (p + q) / 2
        expected_js = np.sqrt((kl_to(p, m) + kl_to(q, m)) / 2 / np.log(2))
        assert_allclose(
            kernels.jensen_shannon_categorical(ref, cur), expected_js, rtol=1e-12, atol=1e-15
        )


def test_unseen_categories_are_pooled_and_missing_counted_apart():
    ref = np.array(["a", "b", "a", None, "b"], dtype=object)
    cur = np.array(["a", "x", "y", np.nan, None, "b"], dtype=object)
    ref_counts, cur_counts, miss_ref, miss_cur = kernels.category_counts(ref, cur)
    assert_array_equal(ref_counts, [2, 2, 0])
    assert_array_equal(cur_counts, [1, 1, 2])
    assert (miss_ref, miss_cur) == (1, 2)
    codes = kernels.category_counts(np.array([1.0, 2.0, np.nan]), np.array([2.0, np.inf, 7.0]))
    assert_array_equal(codes[1], [0, 1, 1]) and codes[3] == 1


def test_degenerate_tables_give_no_evidence():
    assert tuple(kernels.chi2_categorical([1, 1, 1], [1, 1])) == (0.0, 1.0)
    assert tuple(kernels.chi2_categorical([1, 2], [])) == (0.0, 1.0)
    assert kernels.psi_categorical([1, 2, 3], [1, 2, 3]) == 0.0
