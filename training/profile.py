"""The reference drift profile of a model version, built with ``kernels`` from the training split.

Stored in the version as ``reference_profile.npz``: the profile's own plain arrays
(``ReferenceProfile.to_arrays``), no pickle. Monitoring loads it to score live windows.
"""

from __future__ import annotations

import io

import numpy as np

from training.dataschema import DatasetSchema

PROFILE_FILE = "reference_profile.npz"


def build_profile(columns: dict[str, np.ndarray], schema: DatasetSchema, bins: int = 10) -> bytes:
    """Profile of the raw feature columns (before preprocessing), as ``.npz`` bytes."""
    from kernels import ReferenceProfile

    features = {c.name: columns[c.name] for c in schema.features}
    categorical = [c.name for c in schema.features if c.kind == "categorical"]
    profile = ReferenceProfile.fit(features, categorical=categorical, bins=bins)
    buf = io.BytesIO()
    np.savez(buf, **profile.to_arrays())
    return buf.getvalue()


def load_profile(data: bytes):
    """The ``kernels.ReferenceProfile`` stored in ``data``."""
    from kernels import ReferenceProfile

    with np.load(io.BytesIO(data), allow_pickle=False) as arrays:
        return ReferenceProfile.from_arrays({k: arrays[k] for k in arrays.files})
