"""Multivariate drift kernels: the PCA reconstruction score (kernels.multivariate) and the
domain-classifier test (kernels.domain), against numpy/scipy oracles, on data whose marginals
stay and whose joint changes (per-feature tests pass it, these flag it), and seeded unshifted
data (no false alarm)."""

import numpy as np
import pytest
import scipy.stats as ss
from numpy.testing import assert_allclose
from scipy.spatial import cKDTree

import kernels
from kernels._pca import fit_pca, row_errors

RHO = 0.8


def joint(rng, rows: int, rho: float) -> dict[str, np.ndarray]:
    """x0, x1 with correlation ``rho``; x2 free; ``plan`` follows the sign of x2 when rho > 0,
    else is independent of it. Every marginal is the same whatever ``rho``: N(0, 1) and
    P(plan = gold) = 1/2."""
    x0 = rng.normal(size=rows)
    x1 = rho * x0 + np.sqrt(1 - rho * rho) * rng.normal(size=rows)
    x2 = rng.normal(size=rows)
    follows = (x2 > 0) if rho > 0 else (rng.uniform(size=rows) < 0.5)
    flip = rng.uniform(size=rows) < 0.1
    plan = np.where(follows ^ flip, "gold", "basic").astype(object)
    return {"x0": x0, "x1": x1, "x2": x2, "plan": plan}


def encoded(cols: dict[str, np.ndarray]) -> np.ndarray:
    """As a preprocessor does: numerics as they are (standard already), the category one-hot."""
    return np.column_stack([cols["x0"], cols["x1"], cols["x2"], cols["plan"] == "gold", cols["plan"] == "basic"])


@pytest.fixture(scope="module")
def fitted():
    rng = np.random.default_rng(7)
    train, holdout = joint(rng, 20_000, RHO), joint(rng, 5_000, RHO)
    profile = kernels.ReferenceProfile.fit(train, categorical=["plan"])
    return rng, train, profile, kernels.ReconstructionReference.fit(encoded(train), encoded(holdout))


def test_pca_matches_the_covariance_eigenvectors_and_the_projection_residual():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(3_000, 5)) @ rng.normal(size=(5, 5)) + rng.normal(size=5)
    x[:, 4] = 2.0  # a constant column keeps scale 1
    pca = fit_pca(x, variance=0.9)
    z = (x - x.mean(axis=0)) / np.where(x.std(axis=0) > 0, x.std(axis=0), 1.0)
    values, vectors = np.linalg.eigh(np.cov(z, rowvar=False, ddof=0))
    order = np.argsort(values)[::-1]
    share = np.cumsum(values[order]) / values.sum()
    k = int(np.argmax(share >= 0.9) + 1)
    assert pca.components.shape == (k, 5) and pca.explained == pytest.approx(share[k - 1])
    assert_allclose(np.abs(pca.components @ vectors[:, order[:k]]), np.eye(k), atol=1e-8)
    residual = z - z @ pca.components.T @ pca.components
    assert_allclose(row_errors(pca, x), np.linalg.norm(residual, axis=1), rtol=1e-9, atol=1e-9)


def test_missing_values_are_the_column_mean_and_constant_data_has_no_error():
    pca = fit_pca(np.column_stack([np.arange(10.0), np.arange(10.0) ** 2]), 0.99)
    with_nan = row_errors(pca, np.array([[np.nan, np.nan], [np.inf, 4.0]]))
    assert with_nan[0] == 0.0 and np.isfinite(with_nan[1])
    flat = fit_pca(np.ones((5, 3)))
    assert flat.components.shape == (0, 3) and np.all(row_errors(flat, np.ones((2, 3))) == 0.0)
    assert_allclose(row_errors(flat, np.array([[1.0, 1.0, 3.0]])), [2.0])  # a changed constant: scale 1
    with pytest.raises(ValueError, match="variance"):
        fit_pca(np.ones((5, 3)), 0.0)


def test_equal_marginals_with_a_changed_correlation_pass_per_feature_and_fail_multivariate(fitted):
    rng, _, profile, ref = fitted
    current = joint(rng, 3_000, 0.0)
    report = profile.score(current)
    assert not report.dataset_drift and report.drifted_share == 0.0  # every marginal is the same
    score = ref.score(encoded(current))
    assert score.drifted and score.score > score.upper
    domain = kernels.classifier_two_sample(encoded(joint(rng, 2_000, RHO)), encoded(current), seed=3)
    assert domain.auc > 0.6 and domain.p_value < 0.01


def test_no_false_alarm_on_unshifted_windows(fitted):
    rng, _, _, ref = fitted
    scores = [ref.score(encoded(joint(rng, rows, RHO))) for rows in (200, 1_000, 5_000) for _ in range(10)]
    assert not any(s.drifted for s in scores)
    assert all(s.lower < s.score < s.upper for s in scores)
    domain = kernels.classifier_two_sample(encoded(joint(rng, 2_000, RHO)), encoded(joint(rng, 1_500, RHO)), seed=4)
    assert domain.p_value > 0.05 and abs(domain.auc - 0.5) < 0.05


def test_a_window_built_from_segments_or_merged_equals_the_whole(fitted):
    rng, _, _, ref = fitted
    x = encoded(joint(rng, 3_000, 0.3))
    whole = ref.score(x)
    window = ref.new_window()
    for part in np.array_split(x, 7):
        window.partial_fit(part)
    left, right = ref.new_window().partial_fit(x[:1_000]), ref.new_window().partial_fit(x[1_000:])
    for built in (window.score(), left.merge(right).score()):
        assert built.rows == whole.rows and built.score == pytest.approx(whole.score, rel=1e-12)
        assert (built.lower, built.upper) == (whole.lower, whole.upper)
    empty = ref.new_window().score()
    assert (empty.evaluated, empty.drifted, empty.rows) == (False, False, 0)


def test_bounds_narrow_with_rows_and_the_reference_round_trips(fitted):
    _, train, _, ref = fitted
    wide, narrow = ref.bounds(100), ref.bounds(10_000)
    assert wide[0] < narrow[0] < ref.mean_error < narrow[1] < wide[1]
    back = kernels.ReconstructionReference.from_arrays(ref.to_arrays())
    x = encoded(train)[:500]
    assert back.score(x) == ref.score(x)
    crossed = kernels.ReconstructionReference.fit(encoded(train))  # no holdout: 2-fold cross-fitting
    assert crossed.reference_rows == 20_000 and crossed.mean_error == pytest.approx(ref.mean_error, rel=0.05)


def test_the_domain_auc_is_the_mann_whitney_auc_of_leave_one_out_knn_scores():
    rng = np.random.default_rng(11)
    ref, cur = rng.normal(size=(300, 3)), rng.normal(0.3, 1, size=(200, 3))
    result = kernels.classifier_two_sample(ref, cur, k=7, permutations=50, seed=0)
    mean, std = ref.mean(axis=0), ref.std(axis=0)
    z = (np.concatenate([ref, cur]) - mean) / std
    labels = np.r_[np.zeros(300), np.ones(200)]
    _, idx = cKDTree(z).query(z, k=8)
    scores = labels[idx[:, 1:]].sum(axis=1)
    u = ss.mannwhitneyu(scores[labels == 1], scores[labels == 0]).statistic
    assert result.auc == pytest.approx(u / (300 * 200), abs=1e-12)
    assert 1 / 51 <= result.p_value <= 1.0 and result.rows_ref == 300


def test_the_domain_test_without_evidence_is_defined():
    empty = kernels.classifier_two_sample(np.zeros((0, 2)), np.ones((5, 2)))
    assert (empty.evaluated, empty.auc, empty.p_value) == (False, 0.5, 1.0)
    with pytest.raises(ValueError, match="one d"):
        kernels.classifier_two_sample(np.zeros((3, 2)), np.zeros((3, 3)))


def test_windows_keep_a_uniform_sample_that_merges_and_feeds_the_domain_test(fitted):
    from kernels.multivariate import SAMPLE_ROWS

    rng, _, _, ref = fitted
    assert ref.sample.shape == (SAMPLE_ROWS, 5)  # held-out rows
    first, second = encoded(joint(rng, 3_000, RHO)), encoded(joint(rng, 3_000, 0.0))
    window = ref.new_window().partial_fit(first).merge(ref.new_window().partial_fit(second))
    assert window.sample.shape == (SAMPLE_ROWS, 5)
    from_first = (window.sample[:, None, :] == first[None, :, :]).all(axis=2).any(axis=1).sum()
    assert 400 < from_first < 600  # half the union, half the sample (binomial sd 16)
    unshifted = ref.new_window().partial_fit(encoded(joint(rng, 5_000, RHO))).domain_test(seed=1)
    decoupled = ref.new_window().partial_fit(second).domain_test(seed=1)
    assert unshifted.p_value > 0.05 and decoupled.p_value < 0.01 and decoupled.auc > 0.6
    assert kernels.ReconstructionReference.from_arrays(ref.to_arrays()).sample.shape == ref.sample.shape
