"""Fit the ``demo`` model in-process in a few seconds (what ``mlgate up`` does when the
registry has no ``demo``). The full pipeline with Ray Train lives in ``training.job``."""

from __future__ import annotations

import time

import numpy as np
import torch
from torch import nn

from registry import Registry
from registry.preprocess import Preprocessor
from registry.store import ModelVersion
from registry.torch_io import register_torch_model
from training import demo_data
from training.models import TabularMLP, export_classifier

DEMO_NAME = "demo"


def fit_demo(registry: Registry, rows: int = 20_000, epochs: int = 8, seed: int = 0) -> ModelVersion:
    started = time.perf_counter()
    torch.manual_seed(seed)
    schema = demo_data.demo_schema()
    cols = demo_data.generate(rows, seed=seed)
    n_train = int(rows * 0.8)
    train = {k: v[:n_train] for k, v in cols.items()}
    test = {k: v[n_train:] for k, v in cols.items()}
    pre = Preprocessor.fit(schema, train)
    x_train = torch.from_numpy(pre.transform(train))
    y_train = torch.from_numpy(_labels(train))
    model = TabularMLP(pre.width, len(schema.class_labels))
    optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)
    loss_fn = nn.CrossEntropyLoss()
    for _ in range(epochs):
        for idx in torch.randperm(len(x_train)).split(256):
            optimiser.zero_grad()
            loss_fn(model(x_train[idx]), y_train[idx]).backward()
            optimiser.step()
    with torch.inference_mode():
        proba = torch.softmax(model(torch.from_numpy(pre.transform(test))), -1).numpy()
    accuracy = float((proba.argmax(1) == _labels(test)).mean())
    return register_torch_model(
        registry,
        DEMO_NAME,
        export_classifier(model),
        schema,
        preprocessor=pre,
        metrics={"test_accuracy": accuracy, "fit_seconds": time.perf_counter() - started},
        lineage={"source": "training.quickfit", "rows": rows, "epochs": epochs, "seed": seed, "parent_version": None},
        extra_files=_drift_references(schema, pre, train, test, proba),
    )


def _drift_references(schema, pre, train: dict[str, np.ndarray], test: dict[str, np.ndarray],
                      test_proba: np.ndarray) -> dict[str, bytes]:
    """Reference profiles for drift monitoring: the training split's raw features, the
    model's outputs on the held-out split (what live outputs should look like), and the
    multivariate reference (PCA of the preprocessed training features, errors on held-out) and
    the CBPE calibration of the held-out probabilities."""
    from registry.references import (
        CBPE_FILE,
        MULTIVARIATE_FILE,
        OUTPUT_PROFILE_FILE,
        PROFILE_FILE,
        fit_cbpe,
        fit_multivariate,
        fit_output_profile,
    )
    from training.dataschema import DatasetSchema
    from training.profile import build_profile

    dataset_schema = DatasetSchema.from_model_schema(schema, levels=demo_data.CATEGORICAL)
    labels = np.array(schema.class_labels, dtype=object)[test_proba.argmax(1)]
    outputs = {"probabilities": test_proba, "label": labels}
    return {PROFILE_FILE: build_profile(train, dataset_schema),
            OUTPUT_PROFILE_FILE: fit_output_profile(schema, outputs),
            MULTIVARIATE_FILE: fit_multivariate(pre, train, test),
            CBPE_FILE: fit_cbpe(schema, test_proba, _labels(test))}


def _labels(cols: dict[str, np.ndarray]) -> np.ndarray:
    return (cols[demo_data.TARGET] == demo_data.CLASS_LABELS[1]).astype(np.int64)


def ensure_demo(registry: Registry) -> ModelVersion | None:
    """Fit and register ``demo`` version 1 when the registry has none; else do nothing."""
    if registry.list_versions(DEMO_NAME):
        return None
    return fit_demo(registry)
