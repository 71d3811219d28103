"""The reference drift profile of a model version, built with ``kernels`` from the training split.

Stored in the version as ``registry.references.PROFILE_FILE``; monitoring loads it to
score live windows.
"""

from __future__ import annotations

import numpy as np

from registry.references import fit_profile
from training.dataschema import DatasetSchema


def build_profile(columns: dict[str, np.ndarray], schema: DatasetSchema, bins: int = 10) -> bytes:
    """Profile of the raw feature columns (before preprocessing), as ``.npz`` bytes."""
    features = {c.name: columns[c.name] for c in schema.features}
    return fit_profile(features, [c.name for c in schema.features if c.kind == "categorical"], bins)
