"""One training run from start to registration (what ``python -m training train`` runs).

create or resume the run -> fit the preprocessor on the training split -> Ray Train ->
evaluate candidate and production on the test split -> gate -> reference profile ->
register the version with lineage -> stage ``candidate``. Only the registry and the run's
own directory are written; a served model never changes stage here.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from registry import Registry
from registry.preprocess import Preprocessor
from registry.references import (
    CBPE_FILE,
    MULTIVARIATE_FILE,
    PROFILE_FILE,
    cbpe_score_column,
    fit_cbpe,
    fit_multivariate,
)
from registry.store import ModelVersion
from registry.torch_io import register_torch_model
from training import evaluate as ev
from training import gate
from training.config import TrainingConfig
from training.datastore import DatasetVersion, DataStore
from training.models import TabularMLP, export_classifier, export_regressor
from training.profile import build_profile
from training.runs import Run, RunStore, code_revision


@dataclass
class TrainRequest:
    run_id: str
    registry_root: str
    data_root: str
    runs_root: str
    data: str | None = None          # dataset name (new runs)
    data_version: int | None = None  # None: the latest version
    model: str = "demo"
    resume: bool = False
    config: TrainingConfig = field(default_factory=TrainingConfig)
    code_revision: str | None = None
    submission_id: str | None = None


def open_run(req: TrainRequest) -> tuple[Run, DatasetVersion, TrainingConfig]:
    runs = RunStore(req.runs_root)
    if req.resume:
        run = runs.get(req.run_id)
        spec = run.spec
        dataset = DataStore(req.data_root).get(spec["data"]["name"], spec["data"]["version"])
        if dataset.fingerprint != spec["data"]["fingerprint"]:
            raise RuntimeError(f"dataset {dataset.name} v{dataset.version} changed since the run started")
        return run, dataset, TrainingConfig.model_validate(spec["parameters"])
    if not req.data:
        raise ValueError("--data: a new run needs a dataset name")
    dataset = DataStore(req.data_root).get(req.data, req.data_version)
    spec = {"model": req.model, "seed": req.config.seed, "parameters": req.config.model_dump(mode="json"),
            "data": {"name": dataset.name, "version": dataset.version, "fingerprint": dataset.fingerprint,
                     "uri": dataset.uri},
            "code_revision": req.code_revision or code_revision(),
            "roots": {"registry": req.registry_root, "data": req.data_root, "runs": req.runs_root}}
    return runs.create(req.run_id, spec), dataset, req.config


def train(run: Run, dataset: DatasetVersion, cfg: TrainingConfig, pre: Preprocessor, gpus: float):
    """Ray Train to the last epoch; returns the exported TorchScript module and the history."""
    from training import job

    schema = dataset.schema
    config = {"run_id": run.run_id, "runs_root": run.store.root, "task": schema.task, "in_features": pre.width,
              "n_outputs": len(schema.class_labels) if schema.task == "classification" else 1,
              "hidden": list(cfg.hidden), "learning_rate": cfg.learning_rate, "epochs": cfg.epochs,
              "batch_size": cfg.batch_size, "seed": cfg.seed, **_target_scale(dataset)}
    use_gpu = cfg.use_gpu if cfg.use_gpu is not None else gpus > 0
    state = job.fit(dataset, pre, config, workers=cfg.workers, cpus_per_worker=cfg.cpus_per_worker,
                    use_gpu=use_gpu, storage=f"{run.uri}/ray", keep=cfg.checkpoints_to_keep)
    model = TabularMLP(pre.width, config["n_outputs"], tuple(cfg.hidden))
    model.load_state_dict(state["model"])
    if schema.task == "classification":
        return export_classifier(model), state["history"]
    return export_regressor(model, config["target_mean"], config["target_std"]), state["history"]


def _target_scale(dataset: DatasetVersion) -> dict[str, float]:
    if dataset.schema.task != "regression":
        return {}
    y = dataset.columns("train")[dataset.schema.target]
    return {"target_mean": float(np.mean(y)), "target_std": float(np.std(y)) or 1.0}


def assess(registry: Registry, model_name: str, candidate: ev.Scorer, dataset: DatasetVersion,
           cfg: TrainingConfig, *, version: int | None = None) -> tuple[dict[str, Any], dict[str, Any],
                                                                     ModelVersion | None]:
    """(candidate evaluation, gate record, production version) on the test split.

    ``version``: the candidate's own version when it is registered already (``mlgate models
    evaluate``); when it is production itself, it is not compared with itself."""
    schema = dataset.schema
    test = dataset.columns("test")
    categorical = [c.name for c in schema.features if c.kind == "categorical"]
    evaluation = ev.evaluate(candidate, test, schema.target, categorical, cfg.eval)
    scorers, prod_eval, why = {"candidate": candidate}, None, None
    prod_mv = _production(registry, model_name)
    if prod_mv is not None and prod_mv.version == version:
        prod_mv = None
    if prod_mv is not None:
        try:
            prod = ev.Scorer.from_version(prod_mv)
            why = prod.incompatibility(test, schema.task, schema.class_labels)
        except (ValueError, RuntimeError) as exc:
            why = str(exc)
        if why is None:
            prod_eval = ev.evaluate(prod, test, schema.target, categorical, cfg.eval)
            scorers["production"] = prod
    timings = ev.latency(scorers, test, cfg.eval)
    evaluation["latency"] = timings["candidate"]
    if prod_eval is not None:
        prod_eval["latency"] = timings["production"]
        evaluation["production"] = {"version": prod_mv.version, **prod_eval}
    decision = gate.decide(evaluation, prod_eval, cfg.gate, incompatible=why,
                           production_version=prod_mv.version if prod_mv else None)
    return evaluation, decision, prod_mv


def _production(registry: Registry, name: str) -> ModelVersion | None:
    if not registry.list_versions(name):
        return None
    versions = registry.versions_in_stage(name, "production")
    return registry.get(name, versions[-1]) if versions else None


def flat_metrics(evaluation: dict[str, Any], history: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {f"test_{k}": v for k, v in evaluation["metrics"].items()}
    out.update({k: v for k, v in history[-1].items() if k.startswith("val_")} if history else {})
    out["epochs"] = len(history)
    out["max_slice_gap"] = evaluation["max_slice_gap"]["gap"]
    out["max_slice_gap_feature"] = evaluation["max_slice_gap"]["feature"]
    for bs, t in evaluation["latency"]["batch_sizes"].items():
        out[f"latency_p50_ms_batch_{bs}"] = t["p50_ms"]
        out[f"rows_per_s_batch_{bs}"] = t["rows_per_s"]
    return out


def register(registry: Registry, run: Run, module, pre: Preprocessor, dataset: DatasetVersion,
             evaluation: dict, decision: dict, history: list, parent: ModelVersion | None) -> ModelVersion:
    spec = run.spec
    cfg = TrainingConfig.model_validate(spec["parameters"])
    lineage = {"run_id": run.run_id, "data": spec["data"], "code_revision": spec["code_revision"],
               "parameters": spec["parameters"], "seed": spec["seed"],
               "parent_version": parent.version if parent else None, "attempts": len(run.attempts()),
               "source": "training.pipeline", "trained_at": registry.clock()}
    train, test = dataset.columns("train"), dataset.columns("test")
    files = {PROFILE_FILE: build_profile(train, dataset.schema, cfg.eval.profile_bins),
             MULTIVARIATE_FILE: fit_multivariate(pre, train, test),
             "evaluation.json": json.dumps(evaluation, indent=1).encode(),
             "gate.json": json.dumps(decision, indent=1).encode(),
             "training_history.json": json.dumps(history, indent=1).encode(),
             "dataset_schema.json": dataset.schema.model_dump_json(indent=1).encode()}
    cbpe = _cbpe_reference(module, pre, dataset, test)
    if cbpe is not None:
        files[CBPE_FILE] = cbpe
    mv = register_torch_model(registry, spec["model"], module, dataset.schema.model_schema(), preprocessor=pre,
                              metrics=flat_metrics(evaluation, history), lineage=lineage, extra_files=files)
    verdict = "passed" if decision["passed"] else "failed: " + "; ".join(decision["reasons"])
    registry.set_candidate(mv.name, mv.version, actor=f"run:{run.run_id}", reason=f"gate {verdict}")
    return mv


def _cbpe_reference(module, pre: Preprocessor, dataset: DatasetVersion, test: dict) -> bytes | None:
    """The calibration of a binary classifier's held-out probabilities (None for other models)."""
    schema = dataset.schema.model_schema()
    if cbpe_score_column(schema) is None:
        return None
    index = {label: i for i, label in enumerate(schema.class_labels)}
    labels = np.array([index.get(v, -1) for v in test[schema.target]])
    proba = ev.Scorer(module, pre, schema).predict(test)
    known = labels >= 0
    return fit_cbpe(schema, proba[known], labels[known])


class Interrupted(BaseException):
    """The job was asked to stop (SIGTERM from ``ray job stop``); the run can be resumed."""


def execute(req: TrainRequest) -> ModelVersion:
    """Run (or resume) one training run to a registered candidate version."""
    run, dataset, cfg = open_run(req)
    done = [e["epoch"] for e in run.epochs()]
    attempt = run.start_attempt(submission_id=req.submission_id, epochs_done_before=max(done, default=0))
    run.set_status("training", attempt=attempt, submission_id=req.submission_id)
    print(f"[mlgate] run {run.run_id} attempt {attempt}: {dataset.name} v{dataset.version} "
          f"({dataset.manifest['rows']['train']} training rows), {cfg.epochs} epochs, {cfg.workers} worker(s)",
          flush=True)
    try:
        mv, decision, timings = _attempt(run, dataset, cfg, Registry(req.registry_root))
    except (Interrupted, SystemExit):  # SIGTERM: ours before ray.init, Ray's (sys.exit) after
        run.set_status("stopped")
        print(f"[mlgate] run {run.run_id} stopped; resume it with --run-id {run.run_id} --resume", flush=True)
        raise
    except Exception as exc:
        run.set_status("failed", error=f"{type(exc).__name__}: {exc}")
        raise
    run.set_result({"model": mv.name, "version": mv.version, "stage": "candidate", "gate": decision,
                    "timings_s": timings})
    run.set_status("registered", version=mv.version)
    verdict = "passed" if decision["passed"] else "FAILED: " + "; ".join(decision["reasons"])
    print(f"[mlgate] registered {mv.name} version {mv.version} as candidate; gate {verdict}", flush=True)
    print("[mlgate] seconds: " + ", ".join(f"{k} {v:.1f}" for k, v in timings.items()), flush=True)
    return mv


def _attempt(run: Run, dataset: DatasetVersion, cfg: TrainingConfig, registry: Registry):
    import ray

    clock, timings = time.perf_counter(), {}

    def lap(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        timings[name], clock = now - clock, now

    schema = dataset.schema.model_schema()
    pre = Preprocessor.fit(schema, dataset.columns("train"))
    ray.init(ignore_reinit_error=True, log_to_driver=True)
    lap("setup")
    module, history = train(run, dataset, cfg, pre, float(ray.cluster_resources().get("GPU", 0.0)))
    lap("train")
    run.set_status("evaluating")
    evaluation, decision, parent = assess(registry, run.spec["model"], ev.Scorer(module, pre, schema), dataset, cfg)
    lap("evaluate")
    mv = register(registry, run, module, pre, dataset, evaluation, decision, history, parent)
    lap("register")
    return mv, decision, timings
