"""A model version's drift references: artifacts training writes and monitoring reads.

* ``reference_profile.npz`` (:data:`PROFILE_FILE`): the raw input features of the
  version's training split;
* ``reference_outputs.npz`` (:data:`OUTPUT_PROFILE_FILE`, optional): the model's
  outputs on held-out data, i.e. what live outputs should look like.

Both hold a ``kernels.ReferenceProfile`` as its own plain arrays (``to_arrays``), no
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

from registry.schema import ModelSchema

if TYPE_CHECKING:
    from kernels import ReferenceProfile

PROFILE_FILE = "reference_profile.npz"
OUTPUT_PROFILE_FILE = "reference_outputs.npz"


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
