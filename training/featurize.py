"""Raw split columns -> model inputs and targets (numpy and Arrow only: no torch, no Ray).

Ray Data workers import this module to run :class:`Featurize`; keeping it light keeps
their start-up short.
"""

from __future__ import annotations

import numpy as np

from registry.preprocess import Preprocessor
from training.datastore import columns_of


def encode_target(task: str, labels: tuple[str, ...], values: np.ndarray) -> np.ndarray:
    """Class indices (int64) for classifiers, float64 for regressors."""
    if task == "regression":
        return np.asarray(values, dtype=np.float64)
    index = {label: i for i, label in enumerate(labels)}
    return np.fromiter((index[str(v)] for v in values), dtype=np.int64, count=len(values))


class Featurize:
    """Ray Data batch function: raw Arrow columns -> {"x": float32 matrix, "y": target}.

    Regression targets are standardised with the training split's mean and std.
    """

    def __init__(self, pre: Preprocessor, target: str, task: str, labels: tuple[str, ...],
                 target_mean: float = 0.0, target_std: float = 1.0) -> None:
        self.pre, self.target, self.task, self.labels = pre, target, task, labels
        self.target_mean, self.target_std = target_mean, target_std

    def __call__(self, table) -> dict[str, np.ndarray]:
        names = self.pre.schema.feature_names
        numeric = {n for n in names if n in self.pre.numeric}
        if self.task == "regression":
            numeric.add(self.target)
        cols = columns_of(table, [*names, self.target], numeric)
        y = encode_target(self.task, self.labels, cols[self.target])
        if self.task == "regression":
            y = ((y - self.target_mean) / self.target_std).astype(np.float32)
        return {"x": self.pre.transform(cols), "y": y}
