"""Multivariate drift: data-reconstruction error (NannyML's method), fitted once, windows
merged from segments.

Per-feature tests miss a change in how features move together. A PCA fitted on the training
rows (the model's preprocessed features: standardised numerics, one-hot categoricals) keeps
the directions the training data varies along; rows whose features move together differently
reconstruct worse. A window's score is its mean row reconstruction error.

Threshold, as NannyML: the reference's own spread, ``mean +- sigmas * std`` of the mean error
of reference chunks (``sigmas`` = 3). The reference errors are the fitted PCA's on *held-out*
rows (in-sample errors are optimistic); without held-out rows, each half of the training rows
is scored by a PCA fitted on the other half (2-fold cross-fitting, slightly pessimistic).
Windows and reference chunks differ in rows, so the chunk std is taken at the window's size
from the reference's row errors, ``row_std / sqrt(rows)`` (what the std of chunk means
converges to; NannyML's ten or so chunks estimate it only within about +-25%, which made
unshifted windows cross it), and the uncertainty of the reference mean itself is added:
``half_width = sigmas * row_std * sqrt(1 / rows + 1 / reference_rows)``. A window above the
upper bound drifts; one below the lower bound is reported (``below``) but is not drift.

For the slower domain-classifier test (``kernels.domain``, for reports and on demand) the
reference keeps a sample of its held-out rows and each window a uniform sample of its own
(bottom-k: each row drawn a random key, the ``sample_rows`` smallest keys kept, so the samples
of two windows merge into the sample of their union exactly).

Pure numerics: arrays in, arrays out, no I/O (``to_arrays``/``from_arrays`` for storage).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ._pca import Pca, fit_pca, row_errors
from .domain import DomainTest, classifier_two_sample

FORMAT_VERSION = 1
SAMPLE_ROWS = 1000  # rows each side keeps for the domain-classifier test
_MIN_REFERENCE_ROWS = 20  # held-out rows below this: cross-fit the training rows instead


@dataclass(frozen=True)
class MultivariateScore:
    """One window's reconstruction drift: ``score`` (mean row error) against its bounds."""

    score: float
    lower: float
    upper: float
    rows: int
    reference: float  # the reference's mean error

    @property
    def evaluated(self) -> bool:
        return self.rows > 0

    @property
    def drifted(self) -> bool:
        return self.evaluated and self.score > self.upper

    @property
    def below(self) -> bool:
        return self.evaluated and self.score < self.lower


@dataclass(frozen=True)
class ReconstructionReference:
    """The fitted PCA and the mean and spread of its errors on reference rows."""

    pca: Pca
    mean_error: float  # mean row error of the reference rows
    row_std: float  # their std (ddof=1)
    reference_rows: int
    sigmas: float = 3.0
    sample: np.ndarray | None = None  # float64 [<= SAMPLE_ROWS, d]: reference rows for the domain test
    seed: int = 0
    _windows: list = field(default_factory=lambda: [0], compare=False, repr=False)  # windows made so far

    @classmethod
    def fit(cls, train: np.ndarray, holdout: np.ndarray | None = None, *, variance: float = 0.65,
            sigmas: float = 3.0, seed: int = 0) -> ReconstructionReference:
        """Fit on ``train`` ``[n, d]``; the spread from ``holdout`` (or 2-fold cross-fitting)."""
        train = np.asarray(train, dtype=np.float64)
        pca = fit_pca(train, variance)
        rng = np.random.default_rng(seed)
        rows = train
        if holdout is not None and len(holdout) >= _MIN_REFERENCE_ROWS:
            rows = np.asarray(holdout, dtype=np.float64)
            errors = row_errors(pca, rows)
        else:
            errors = _cross_fitted_errors(train, variance, rng)
        sample = rows[np.sort(rng.choice(len(rows), min(SAMPLE_ROWS, len(rows)), replace=False))]
        return cls(pca, float(errors.mean()), float(errors.std(ddof=1)), int(errors.size), sigmas, sample, seed)

    def bounds(self, rows: int) -> tuple[float, float]:
        """(lower, upper) for a window of ``rows`` rows (``rows`` >= 1)."""
        half = self.sigmas * self.row_std * math.sqrt(1.0 / max(rows, 1) + 1.0 / self.reference_rows)
        return max(self.mean_error - half, 0.0), self.mean_error + half

    def new_window(self) -> ReconstructionWindow:
        """A window with a random stream of its own (seeded: the n-th window gets the same stream)."""
        self._windows[0] += 1
        return ReconstructionWindow(self, np.random.default_rng([self.seed, self._windows[0]]))

    def score(self, x: np.ndarray) -> MultivariateScore:
        """One matrix as a whole window."""
        window = self.new_window()
        window.partial_fit(x)
        return window.score()

    def to_arrays(self) -> dict[str, np.ndarray]:
        p = self.pca
        return {"format_version": np.int64(FORMAT_VERSION), "mean": p.mean, "scale": p.scale,
                "components": p.components, "explained": np.float64(p.explained),
                "mean_error": np.float64(self.mean_error), "row_std": np.float64(self.row_std),
                "reference_rows": np.int64(self.reference_rows), "sigmas": np.float64(self.sigmas),
                **({} if self.sample is None else {"sample": self.sample.astype(np.float32)})}

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> ReconstructionReference:
        version = int(arrays["format_version"])
        if version != FORMAT_VERSION:
            raise ValueError(f"reconstruction reference format {version}, this code reads {FORMAT_VERSION}")
        pca = Pca(np.asarray(arrays["mean"], np.float64), np.asarray(arrays["scale"], np.float64),
                  np.asarray(arrays["components"], np.float64), float(arrays["explained"]))
        sample = np.asarray(arrays["sample"], np.float64) if "sample" in arrays else None
        return cls(pca, float(arrays["mean_error"]), float(arrays["row_std"]), int(arrays["reference_rows"]),
                   float(arrays["sigmas"]), sample)


class ReconstructionWindow:
    """Sums of row errors over the segments seen (merge exactly), and a bounded uniform
    sample of the rows for the domain test."""

    def __init__(self, reference: ReconstructionReference, rng: np.random.Generator) -> None:
        self.reference = reference
        self.rows = 0
        self.total = 0.0
        self._rng = rng
        self._keys = np.empty(0, dtype=np.float64)
        self.sample = np.empty((0, reference.pca.width), dtype=np.float64)

    def partial_fit(self, x: np.ndarray) -> ReconstructionWindow:
        """Add a segment: the preprocessed feature matrix ``[rows, d]`` of its rows."""
        errors = row_errors(self.reference.pca, x)
        self.rows += int(errors.size)
        self.total += float(errors.sum())
        self._keep(self._rng.random(len(x)), np.asarray(x, dtype=np.float64))
        return self

    def merge(self, other: ReconstructionWindow) -> ReconstructionWindow:
        if other.reference is not self.reference:
            raise ValueError("windows of different references do not merge")
        self.rows += other.rows
        self.total += other.total
        self._keep(other._keys, other.sample)
        return self

    def _keep(self, keys: np.ndarray, rows: np.ndarray) -> None:
        if keys.size > SAMPLE_ROWS:  # only the new rows' smallest keys can enter: copy just those
            first = np.argpartition(keys, SAMPLE_ROWS - 1)[:SAMPLE_ROWS]
            keys, rows = keys[first], rows[first]
        keys, rows = np.concatenate([self._keys, keys]), np.concatenate([self.sample, rows])
        if keys.size > SAMPLE_ROWS:
            keep = np.argpartition(keys, SAMPLE_ROWS - 1)[:SAMPLE_ROWS]
            keys, rows = keys[keep], rows[keep]
        self._keys, self.sample = keys, rows

    def domain_test(self, **kw) -> DomainTest | None:
        """``kernels.classifier_two_sample`` of the reference's sample against this window's
        (None when the reference has none); ``kw`` as that function takes."""
        if self.reference.sample is None:
            return None
        return classifier_two_sample(self.reference.sample, self.sample, **kw)

    def score(self) -> MultivariateScore:
        ref = self.reference
        if self.rows == 0:
            return MultivariateScore(0.0, 0.0, 0.0, 0, ref.mean_error)
        lower, upper = ref.bounds(self.rows)
        return MultivariateScore(self.total / self.rows, lower, upper, self.rows, ref.mean_error)


def _cross_fitted_errors(train: np.ndarray, variance: float, rng: np.random.Generator) -> np.ndarray:
    order = rng.permutation(train.shape[0])
    a, b = order[: order.size // 2], order[order.size // 2:]
    if a.size < 2 or b.size < 2:
        raise ValueError(f"need at least 4 training rows to cross-fit the reference errors, got {train.shape[0]}")
    return np.concatenate([row_errors(fit_pca(train[a], variance), train[b]),
                           row_errors(fit_pca(train[b], variance), train[a])])
