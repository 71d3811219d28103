"""Multiple-testing correction and the dataset verdict."""

import numpy as np
import pytest
import scipy.stats as ss
from numpy.testing import assert_allclose

import kernels


def test_benjamini_hochberg_matches_scipy():
    rng = np.random.default_rng(0)
    for m in (1, 2, 7, 50, 333):
        p = np.concatenate([rng.uniform(size=m), [0.01, 0.01]])  # with ties
        assert_allclose(
            kernels.benjamini_hochberg(p), ss.false_discovery_control(p, method="bh"), rtol=1e-14
        )


def test_bonferroni_and_none():
    p = np.array([0.001, 0.02, 0.5])
    assert_allclose(kernels.bonferroni(p), [0.003, 0.06, 1.0])
    assert_allclose(kernels.adjust_pvalues(p, "none"), p)
    with pytest.raises(ValueError):
        kernels.adjust_pvalues(p, "holm")


def test_dataset_drift_share_ignores_unevaluated_features():
    drifted = np.array([True, False, True, False])
    evaluated = np.array([True, True, True, False])
    assert kernels.dataset_drift(drifted, evaluated, 0.5) == (pytest.approx(2 / 3), True)
    assert kernels.dataset_drift(drifted, evaluated, 0.7) == (pytest.approx(2 / 3), False)
    assert kernels.dataset_drift([False], [False]) == (0.0, False)
    assert kernels.benjamini_hochberg([]).size == 0
