"""Drift statistics in numba: exact where scipy is exact, parallel across features.

Pure numerics: no I/O, no pandas, no Ray, nothing else of mlgate.  Three layers:

* single-column functions with scipy-like signatures (:mod:`kernels.twosample`),
  checked against scipy in the tests;
* a production profile: :class:`ReferenceProfile` fitted once from the training
  columns, stored as plain arrays, scoring a :class:`Window` (built segment by
  segment, merged exactly) for many features in one parallel call;
* the njit building blocks themselves (:mod:`kernels.inner`) for user kernels.

NaN and +-inf are missing values: counted and reported, never binned or
ranked.  Empty samples give statistic 0.0 and p-value 1.0.  See
``kernels/README.md`` for every rule (bins, epsilon, unseen categories).
"""

from ._binned import PSI_EPS
from ._columns import SortedColumns, finite_sorted
from ._pvalues import KS_EXACT_MAX_N
from ._scoring import BinnedScores
from .cbpe import CbpeReference, CbpeWindow
from .domain import DomainTest, classifier_two_sample
from .multitest import (
    adjust_pvalues,
    benjamini_hochberg,
    bonferroni,
    dataset_drift,
    drifted_share,
)
from .multivariate import MultivariateScore, ReconstructionReference, ReconstructionWindow
from .profile import ReferenceProfile
from .report import CategoricalScores, DriftReport, NumericScores
from .twosample import (
    TestResult,
    category_counts,
    chi2_categorical,
    histogram,
    jensen_shannon,
    jensen_shannon_categorical,
    ks_2samp,
    psi,
    psi_categorical,
    quantile_edges,
    wasserstein,
    wasserstein_norm,
)
from .window import Window

__all__ = [
    "KS_EXACT_MAX_N",
    "PSI_EPS",
    "BinnedScores",
    "CategoricalScores",
    "CbpeReference",
    "CbpeWindow",
    "DomainTest",
    "DriftReport",
    "MultivariateScore",
    "NumericScores",
    "ReconstructionReference",
    "ReconstructionWindow",
    "ReferenceProfile",
    "SortedColumns",
    "TestResult",
    "Window",
    "adjust_pvalues",
    "benjamini_hochberg",
    "bonferroni",
    "category_counts",
    "chi2_categorical",
    "classifier_two_sample",
    "dataset_drift",
    "drifted_share",
    "finite_sorted",
    "histogram",
    "jensen_shannon",
    "jensen_shannon_categorical",
    "ks_2samp",
    "psi",
    "psi_categorical",
    "quantile_edges",
    "wasserstein",
    "wasserstein_norm",
]
