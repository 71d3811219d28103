"""Submitting a training job when the policy triggers, and following it to its outcome.

The job is the training sidecar's own (``training.submit``: the entry point
``python -m training train``, submitted through the Ray Job Submission API with the
cluster token as a bearer token), with the resolved ``training`` configuration plus
``retrain.training_overrides``. Its data: ``retrain.data`` or the dataset the
served version was trained on (its lineage), plus -- when labelled live rows exist and
``retrain.include_live_labels`` -- a new version of that dataset holding the base rows
and the labelled live rows (inputs from the prediction log; personal-data features,
never logged in clear, are missing). Base rows keep their split: the split hashes row
content with the base version's seed. The new model version is registered as a
*candidate* with the evaluation gate's decision, exactly as for ``mlgate train``;
nothing here promotes it.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from contracts import feedback as fb
from contracts import fs as rfs
from contracts import predlog
from contracts.clock import Clock, wall_clock_s
from contracts.errors import NotFound
from registry.store import ModelVersion


@dataclass
class Roots:
    registry_root: str
    log_root: str
    data_root: str
    runs_root: str


@dataclass
class TrainingPlan:
    trigger_id: str
    model: str
    run_id: str
    data_name: str
    data_version: int | None
    live_rows: int = 0

    def to_dict(self) -> dict:
        return asdict(self)


def base_data(mv: ModelVersion, configured: str | None) -> tuple[str, int | None]:
    """The dataset to retrain on: the configured name (latest version) or the version's lineage."""
    if configured:
        return configured, None
    data = mv.lineage.get("data") or {}
    if not data.get("name"):
        raise NotFound(f"{mv.name} v{mv.version} names no training dataset in its lineage; "
                       f"set monitoring.retrain.data")
    return data["name"], data.get("version")


def live_slice(log_root: str, model: str, labelled: pa.Table, schema) -> pa.Table:
    """Labelled live rows as dataset rows (``schema``: the base DatasetSchema)."""
    ts = labelled[predlog.TIMESTAMP].to_numpy()
    import datetime as dt

    since = dt.datetime.fromtimestamp(ts.min() / 1e6, dt.UTC)
    until = dt.datetime.fromtimestamp(ts.max() / 1e6 + 1e-3, dt.UTC)
    cols = [predlog.REQUEST_ID, predlog.ROW_INDEX] + [predlog.INPUT_PREFIX + c.name for c in schema.features]
    logged = predlog.read_logs(log_root, model, since, until, cols)
    keys = [predlog.REQUEST_ID, predlog.ROW_INDEX]
    rows = logged.join(labelled.select([*keys, fb.LABEL, fb.VALUE]), keys, join_type="inner")
    out = {}
    for c in schema.features:
        name = predlog.INPUT_PREFIX + c.name
        kind = pa.float64() if c.kind == "numeric" else pa.string()
        logged = name in rows.column_names and not c.pii
        out[c.name] = rows[name].cast(kind) if logged else pa.nulls(rows.num_rows, kind)
    target = rows[fb.LABEL] if schema.task == "classification" else rows[fb.VALUE]
    out[schema.target] = target.cast(pa.string() if schema.task == "classification" else pa.float64())
    return pa.table(out)


def dataset_schema(data_root: str, name: str, version: int | None):
    """The schema of dataset ``name`` (version ``version``, default the latest); NotFound if absent."""
    from training.datastore import DataStore

    return DataStore(data_root).get(name, version).schema


def with_live_rows(data_root: str, name: str, version: int | None, live: pa.Table, work_dir: Path,
                   clock: Clock = wall_clock_s) -> int:
    """Publish base + live rows as a new version of dataset ``name``; returns its number."""
    from training.config import SplitConfig
    from training.datastore import DataStore
    from training.ingest import ingest

    base = DataStore(data_root).get(name, version)
    columns = base.schema.columns
    parts = [base.read(split).select(columns) for split in ("train", "validation", "test")]
    live = live.select([c for c in columns if c in live.column_names])
    live = live.cast(pa.schema([parts[0].schema.field(n) for n in live.column_names]))
    table = pa.concat_tables([*parts, live],
                             promote_options="permissive").select(columns)
    work_dir.mkdir(parents=True, exist_ok=True)
    source = work_dir / "data.parquet"
    pq.write_table(table, source)
    split = base.manifest.get("split", {})
    cfg = SplitConfig(**{k: split[k] for k in ("seed", "validation_share", "test_share") if k in split})
    return ingest(DataStore(data_root), str(source), name, schema=base.schema, split=cfg,
                  clock=clock).dataset.version


def job_spec(plan: TrainingPlan, roots: Roots, training: dict):
    """The training sidecar's job (``training.submit.JobSpec``) for a plan."""
    from training.config import TrainingConfig
    from training.submit import JobSpec

    return JobSpec(run_id=plan.run_id, registry_root=roots.registry_root, data_root=roots.data_root,
                   runs_root=roots.runs_root, data=plan.data_name, data_version=plan.data_version,
                   model=plan.model, config=TrainingConfig.model_validate(training))


def job_client(address: str, token: str | None, *, insecure: bool = False):
    """A Ray ``JobSubmissionClient`` sending the cluster token (the training sidecar's client:
    ``https://`` beyond loopback; plain HTTP to another host only when ``insecure``)."""
    from training.submit import job_client as make

    return make(address, token, insecure=insecure)


def submit(client, spec, clock: Clock = wall_clock_s) -> tuple[str, str]:
    """Submit through the training sidecar; ``(job id, entry point)``."""
    from training.submit import submit as submit_job

    job_id = submit_job(client, spec, clock)
    return job_id, spec.entrypoint(job_id)


def job_status(client, job_id: str) -> tuple[str, str | None]:
    info = client.get_job_info(job_id)
    status = info.status.value if hasattr(info.status, "value") else info.status
    return str(status), info.message


TERMINAL = ("SUCCEEDED", "FAILED", "STOPPED")


def run_result(runs_root: str, run_id: str) -> dict | None:
    """The training run's ``result.json`` (registered version, gate), if it finished."""
    fs, path = rfs.resolve(runs_root)
    target = f"{path}/{run_id}/result.json"
    return json.loads(rfs.read_bytes(fs, target)) if rfs.exists(fs, target) else None
