"""``ReferenceProfile``: fit once from the training columns, score windows in one call.

The profile holds, per numeric feature, the sorted finite reference values
(exact KS and Wasserstein need them), the reference-quantile bin edges and
counts (PSI, JS), mean and std; per categorical feature, the vocabulary and
counts; and missing counts for both.  It round-trips through plain numpy
arrays (:meth:`to_arrays` / :meth:`from_arrays`, or an ``.npz`` file with
:meth:`save` / :meth:`load`), which is what goes into a model artifact.
"""

from __future__ import annotations

import os
from collections.abc import Collection, Mapping

import numpy as np

from . import _profile_arrays as pa
from ._binned import PSI_EPS
from ._reference import (
    CategoricalReference,
    NumericReference,
    fit_categorical_reference,
    fit_numeric_reference,
)
from ._scoring import (
    BinnedScores,
    score_binned_features,
    score_categorical_features,
    score_numeric_features,
)
from .report import DriftReport, build_report
from .window import Window

_CATEGORICAL_KINDS = "OUSb"


def _split_kinds(columns: Mapping[str, object], categorical: Collection[str]):
    unknown = set(categorical) - set(columns)
    if unknown:
        raise ValueError(f"categorical names not among the columns: {sorted(unknown)}")
    numeric, cats = {}, {}
    for name, values in columns.items():
        arr = np.asarray(values)
        if name in categorical or arr.dtype.kind in _CATEGORICAL_KINDS:
            cats[str(name)] = arr
        else:
            numeric[str(name)] = arr
    return numeric, cats


class ReferenceProfile:
    """Reference statistics of a training set; see the module docstring."""

    def __init__(
        self,
        numeric: NumericReference,
        categorical: CategoricalReference,
        bins: int = 10,
        eps: float = PSI_EPS,
    ):
        overlap = set(numeric.names) & set(categorical.names)
        if overlap:
            raise ValueError(f"features both numeric and categorical: {sorted(overlap)}")
        self.numeric = numeric
        self.categorical = categorical
        self.bins = int(bins)
        self.eps = float(eps)

    @classmethod
    def fit(
        cls,
        columns: Mapping[str, object],
        categorical: Collection[str] = (),
        bins: int = 10,
        eps: float = PSI_EPS,
        n_threads: int | None = None,
    ) -> ReferenceProfile:
        """Fit from ``name -> 1-D array``; object, string and bool columns are categorical.

        Integer columns are numeric unless named in ``categorical``.  ``bins`` is
        the number of reference-quantile bins for PSI and JS; ``eps`` the PSI share
        floor.
        """
        if bins < 2:
            raise ValueError(f"bins must be at least 2, got {bins}")
        numeric, cats = _split_kinds(columns, categorical)
        return cls(
            fit_numeric_reference(list(numeric), list(numeric.values()), bins, n_threads),
            fit_categorical_reference(list(cats), list(cats.values())),
            bins,
            eps,
        )

    @property
    def features(self) -> tuple[str, ...]:
        """All feature names: numeric first, then categorical (report order)."""
        return self.numeric.names + self.categorical.names

    def to_arrays(self) -> dict[str, np.ndarray]:
        """Plain arrays (no object dtype) that :meth:`from_arrays` turns back into a profile."""
        arrays = pa.settings_to_arrays(self.bins, self.eps)
        arrays.update(pa.numeric_to_arrays(self.numeric))
        arrays.update(pa.categorical_to_arrays(self.categorical))
        return arrays

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray]) -> ReferenceProfile:
        bins, eps = pa.settings_from_arrays(arrays)
        return cls(pa.numeric_from_arrays(arrays), pa.categorical_from_arrays(arrays), bins, eps)

    def save(self, path: str | os.PathLike) -> None:
        """Write :meth:`to_arrays` to an ``.npz`` file (numpy appends the suffix if absent)."""
        np.savez(path, **self.to_arrays())

    @classmethod
    def load(cls, path: str | os.PathLike) -> ReferenceProfile:
        with np.load(path, allow_pickle=False) as data:
            return cls.from_arrays({key: data[key] for key in data.files})

    def new_window(self, n_threads: int | None = None) -> Window:
        """An empty current window to fill segment by segment with ``partial_fit``."""
        return Window(self, n_threads)

    def score(
        self,
        current: Window | Mapping[str, object],
        alpha: float = 0.05,
        correction: str = "bh",
        drift_share: float = 0.5,
        base: float = 2.0,
    ) -> DriftReport:
        """Score a window (or one mapping of current columns) against the reference.

        Numeric features: KS with p-value, Wasserstein raw and normalised, PSI and
        JS; categorical: chi-squared, PSI and JS.  Features drift when their
        corrected p-value is below ``alpha``; the dataset drifts when the share of
        drifted features reaches ``drift_share``.
        """
        window = current if isinstance(current, Window) else self.new_window().partial_fit(current)
        if window.profile is not self:
            window.check_compatible(self)
        numeric = score_numeric_features(self.numeric, window.numeric_values(), self.eps, base)
        cat_counts, cat_missing = window.categorical_counts()
        categorical = score_categorical_features(
            self.categorical, cat_counts, cat_missing, self.eps, base
        )
        return build_report(numeric, categorical, alpha, correction, drift_share)

    def score_binned(
        self, columns: Mapping[str, object], base: float = 2.0, n_threads: int | None = None
    ) -> BinnedScores:
        """PSI and JS of the numeric features only, from one streaming pass without sorting."""
        cols = [_column(columns, name) for name in self.numeric.names]
        return score_binned_features(self.numeric, cols, self.eps, base, n_threads)


def _column(columns: Mapping[str, object], name: str) -> np.ndarray:
    if name not in columns:
        raise ValueError(f"current data lacks feature {name!r}")
    return np.asarray(columns[name])
