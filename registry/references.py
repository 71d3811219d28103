"""A model version's drift references: artifacts training writes and monitoring reads.

* ``reference_profile.npz`` (:data:`PROFILE_FILE`): the raw input features of the
  version's training split;
* ``reference_outputs.npz`` (:data:`OUTPUT_PROFILE_FILE`, optional): the model's
  outputs on held-out data, i.e. what live outputs should look like;
* ``reference_multivariate.npz`` (:data:`MULTIVARIATE_FILE`, optional): the PCA of the
  training split's *preprocessed* features (as the model's preprocessor encodes them) and
  its reconstruction errors on the held-out split, for multivariate drift
  (``kernels.ReconstructionReference``). Personal-data features are left out: the log never
  holds them in clear;
* ``reference_cbpe.npz`` (:data:`CBPE_FILE`, optional, binary classifiers): the calibration
  map of the positive class's probability fitted on the held-out split
  (``kernels.CbpeReference``), to estimate the model's metrics before labels arrive.

The first two hold a ``kernels.ReferenceProfile`` as its own plain arrays (``to_arrays``), no
pickle. Output "features" are named like this, from the schema's outputs:

* a classifier's ``probabilities`` [C]: ``probabilities[<label>]`` per class (for two
  classes only the second, positive class), numeric;
* a string output such as ``label``: categorical; a scalar numeric output: numeric.

``kernels`` (numba) is imported only by the functions that fit or load a profile.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np

from registry.preprocess import Preprocessor
from registry.schema import ModelSchema

if TYPE_CHECKING:
    from kernels import CbpeReference, ReconstructionReference, ReferenceProfile

PROFILE_FILE = "reference_profile.npz"
OUTPUT_PROFILE_FILE = "reference_outputs.npz"
MULTIVARIATE_FILE = "reference_multivariate.npz"
CBPE_FILE = "reference_cbpe.npz"
_SCORE_COLUMN_KEY = "score_column"
_FEATURES_KEY = "features"


def fit_profile(columns: Mapping[str, np.ndarray], categorical: list[str], bins: int = 10) -> bytes:
    """The profile of these columns (``categorical``: the names that are categories) as ``.npz`` bytes."""
    from kernels import ReferenceProfile

    profile = ReferenceProfile.fit(dict(columns), categorical=categorical, bins=bins)
    buf = io.BytesIO()
    np.savez(buf, **profile.to_arrays())
    return buf.getvalue()


def load_profile(data: bytes) -> ReferenceProfile:
    """The ``kernels.ReferenceProfile`` stored in ``data``."""
    from kernels import ReferenceProfile

    with np.load(io.BytesIO(data), allow_pickle=False) as arrays:
        return ReferenceProfile.from_arrays({k: arrays[k] for k in arrays.files})


def output_columns(schema: ModelSchema, outputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Drift columns of model outputs (``name -> array``, as the model returns them)."""
    cols: dict[str, np.ndarray] = {}
    for spec in schema.outputs:
        values = outputs.get(spec.name)
        if values is None:
            continue
        values = np.asarray(values)
        if values.ndim == 2 and schema.class_labels and values.shape[1] == len(schema.class_labels):
            classes = range(1, 2) if values.shape[1] == 2 else range(values.shape[1])
            for k in classes:
                cols[f"{spec.name}[{schema.class_labels[k]}]"] = values[:, k].astype(np.float64)
        elif values.ndim == 1:
            cols[spec.name] = values if is_text(values) else values.astype(np.float64)
    return cols


def fit_output_profile(schema: ModelSchema, outputs: Mapping[str, np.ndarray], bins: int = 10) -> bytes:
    """The output reference of a version as ``.npz`` bytes (store it as :data:`OUTPUT_PROFILE_FILE`)."""
    cols = output_columns(schema, outputs)
    return fit_profile(cols, [k for k, v in cols.items() if is_text(v)], bins)


def is_text(values: np.ndarray) -> bool:
    return values.dtype.kind in "OUS"


def multivariate_features(schema: ModelSchema) -> tuple[str, ...]:
    """The inputs multivariate drift covers: all but personal data."""
    return tuple(f.name for f in schema.inputs if not f.pii)


def multivariate_matrix(pre: Preprocessor, columns: Mapping[str, np.ndarray],
                        features: tuple[str, ...]) -> np.ndarray:
    """The preprocessor's matrix of ``features`` only (float64); the other inputs are fed as
    missing and their encoded columns dropped."""
    n = len(next(iter(columns.values()))) if columns else 0
    full = {}
    keep: list[int] = []
    offset = 0
    for spec in pre.schema.inputs:
        width = pre.categorical[spec.name].width if spec.categorical else 2
        if spec.name in features:
            values = columns[spec.name]
            # numpy strings as Python ones: the preprocessor's one-lookup-per-value path
            full[spec.name] = values.astype(object) if spec.categorical and values.dtype.kind == "U" else values
            keep.extend(range(offset, offset + width))
        else:
            full[spec.name] = np.full(n, None, dtype=object) if spec.categorical else np.full(n, np.nan)
        offset += width
    return pre.transform(full)[:, keep].astype(np.float64)


def fit_multivariate(pre: Preprocessor, train: Mapping[str, np.ndarray],
                     holdout: Mapping[str, np.ndarray] | None = None) -> bytes:
    """The multivariate reference of a version as ``.npz`` bytes (:data:`MULTIVARIATE_FILE`)."""
    from kernels import ReconstructionReference

    features = multivariate_features(pre.schema)
    ref = ReconstructionReference.fit(multivariate_matrix(pre, train, features),
                                      None if holdout is None else multivariate_matrix(pre, holdout, features))
    buf = io.BytesIO()
    np.savez(buf, **ref.to_arrays(), **{_FEATURES_KEY: np.array(features, dtype=str)})
    return buf.getvalue()


def load_multivariate(data: bytes) -> tuple[ReconstructionReference, tuple[str, ...]]:
    """The reference stored in ``data`` and the features it covers."""
    from kernels import ReconstructionReference

    with np.load(io.BytesIO(data), allow_pickle=False) as arrays:
        features = tuple(str(f) for f in arrays[_FEATURES_KEY])
        return ReconstructionReference.from_arrays({k: arrays[k] for k in arrays.files}), features


def fit_cbpe(schema: ModelSchema, probabilities: np.ndarray, labels: np.ndarray) -> bytes | None:
    """The CBPE reference (:data:`CBPE_FILE`) of a binary classifier from its held-out class
    probabilities ``[n, 2]`` and true class indices ``[n]``; None for any other model."""
    from kernels import CbpeReference

    column = cbpe_score_column(schema)
    if column is None:
        return None
    ref = CbpeReference.fit(np.asarray(probabilities, dtype=np.float64)[:, 1], np.asarray(labels) == 1)
    buf = io.BytesIO()
    np.savez(buf, **ref.to_arrays(), **{_SCORE_COLUMN_KEY: np.array(column)})
    return buf.getvalue()


def cbpe_score_column(schema: ModelSchema) -> str | None:
    """The output drift column holding a binary classifier's positive-class probability."""
    if schema.task != "classification" or len(schema.class_labels) != 2:
        return None
    for spec in schema.outputs:
        if len(spec.shape) == 1 and spec.shape[0] == 2 and spec.datatype.startswith("FP"):
            return f"{spec.name}[{schema.class_labels[1]}]"
    return None


def load_cbpe(data: bytes) -> tuple[CbpeReference, str]:
    """The CBPE reference stored in ``data`` and the output column it reads."""
    from kernels import CbpeReference

    with np.load(io.BytesIO(data), allow_pickle=False) as arrays:
        return CbpeReference.from_arrays({k: arrays[k] for k in arrays.files}), str(arrays[_SCORE_COLUMN_KEY])
