"""Evaluate and gate a version already in the registry (``mlgate models evaluate``).

The same evaluation and gate a training run applies before registering
(:func:`training.pipeline.assess`, with the configured ``training.eval`` and ``training.gate``),
on a dataset version's test split, against the production version when there is one. The
decision is recorded beside the version (:mod:`registry.gates`), never inside it: a published
version does not change. No Ray: the evaluation runs in this process on CPU.
"""

from __future__ import annotations

from typing import Any

from contracts.errors import InvalidInput
from registry import Registry
from registry.gates import GateRecord
from training import evaluate as ev
from training.config import TrainingConfig
from training.datastore import DatasetVersion
from training.pipeline import assess


def evaluate_version(registry: Registry, name: str, version: int, dataset: DatasetVersion, cfg: TrainingConfig,
                     *, actor: str | None = None, actor_id: str | None = None) -> GateRecord:
    """Evaluate ``name`` version ``version`` on ``dataset``'s test split and record the gate's decision."""
    mv = registry.get(name, version)
    where = f"{name} version {version} cannot be evaluated on dataset {dataset.name} v{dataset.version}"
    try:
        scorer = ev.Scorer.from_version(mv)
    except ValueError as exc:
        raise InvalidInput(f"{where}: {exc}") from None
    schema = dataset.schema
    why = scorer.incompatibility(dataset.columns("test"), schema.task, schema.class_labels)
    if why is not None:
        raise InvalidInput(f"{where}: {why}")
    evaluation, decision, _ = assess(registry, name, scorer, dataset, cfg, version=version)
    decision = {**decision, "evaluation": _summary(evaluation)}
    return registry.record_gate(name, version, decision, dataset=dataset_ref(dataset), actor=actor,
                                actor_id=actor_id)


def dataset_ref(dataset: DatasetVersion) -> dict[str, Any]:
    return {"name": dataset.name, "version": dataset.version, "fingerprint": dataset.fingerprint, "uri": dataset.uri}


def _summary(evaluation: dict[str, Any]) -> dict[str, Any]:
    """What the record keeps of the evaluation: rows, task metrics, the largest slice gap."""
    return {k: evaluation[k] for k in ("rows", "metrics", "max_slice_gap")}
