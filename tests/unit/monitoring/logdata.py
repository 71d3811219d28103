"""Test data for the monitor: a registry version with reference profiles (no torch model
needed), and prediction-log / feedback segments written exactly as the contracts say."""

from __future__ import annotations

import datetime as dt
import itertools

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from contracts import predlog
from registry.references import OUTPUT_PROFILE_FILE, PROFILE_FILE, fit_output_profile
from registry.store import Registry
from training import demo_data
from training.dataschema import DatasetSchema
from training.profile import build_profile

MODEL = "demo"
T0 = dt.datetime(2026, 11, 20, 12, 0, tzinfo=dt.UTC)
T0_US = int(T0.timestamp() * 1e6)
_seq = itertools.count(1)


def toy_model(cols: dict[str, np.ndarray]) -> np.ndarray:
    """Stand-in for the demo model: churn probability falls with income and tenure."""
    income = np.nan_to_num(np.log(np.asarray(cols["income"], dtype=np.float64)), nan=10.5)
    logit = -1.2 * (income - 10.5) - 0.04 * (cols["tenure_months"] - 30.0) + np.where(cols["plan"] == "basic", 0.8, 0)
    p = 1.0 / (1.0 + np.exp(-logit))
    return np.stack([1 - p, p], axis=1).astype(np.float32)


def publish_version(root: str, rows: int = 12000, seed: int = 0, with_outputs: bool = True) -> int:
    schema = demo_data.demo_schema()
    cols = demo_data.generate(rows, seed=seed)
    files = {"model.pt": b"no weights: monitoring tests never load them",
             "schema.json": schema.model_dump_json().encode(),
             PROFILE_FILE: build_profile(cols, DatasetSchema.from_model_schema(schema, demo_data.CATEGORICAL))}
    if with_outputs:
        proba = toy_model(cols)
        labels = np.array(schema.class_labels, dtype=object)[proba.argmax(1)]
        files[OUTPUT_PROFILE_FILE] = fit_output_profile(schema, {"probabilities": proba, "label": labels})
    return Registry(root).publish(MODEL, files).version


def log_table(cols: dict[str, np.ndarray], version: str, ts_us: np.ndarray, first_id: int = 0,
              status: int = 200, rows_per_request: int = 1, identity: str | None = None) -> pa.Table:
    n = len(ts_us)
    proba = toy_model(cols)
    labels = np.array(demo_data.CLASS_LABELS, dtype=object)[proba.argmax(1)]
    req = first_id + np.arange(n) // rows_per_request
    fixed = {  # the contract's fixed columns, with its types
        predlog.REQUEST_ID: [f"r{i}" for i in req], predlog.ROW_INDEX: np.arange(n) % rows_per_request,
        predlog.TIMESTAMP: ts_us, predlog.MODEL: [MODEL] * n, predlog.VERSION: [version] * n,
        predlog.ROUTE: ["plain"] * n, predlog.STATUS: np.full(n, status, np.int16),
        predlog.LATENCY_MS: np.ones(n, np.float32), predlog.ERROR: [None] * n, predlog.IDENTITY: [identity] * n,
    }
    table = {f.name: pa.array(fixed[f.name], f.type) for f in predlog.FIXED_FIELDS}
    for name in demo_data.NUMERIC:
        if name not in demo_data.PII_FEATURES:
            table[f"in_{name}"] = pa.array(cols[name], pa.float64(), from_pandas=True)
    for name in demo_data.CATEGORICAL:
        table[f"in_{name}"] = pa.array(list(cols[name]), pa.string())
    table["out_probabilities"] = pa.FixedSizeListArray.from_arrays(pa.array(proba.reshape(-1)), 2)
    table["out_label"] = pa.array(list(labels), pa.string())
    values = {name: column.type for name, column in table.items() if name not in predlog.FIXED_TYPES}
    return pa.table(table, schema=predlog.segment_schema(values))


def write_log(log_root: str, table: pa.Table, writer: str = "w") -> predlog.Segment:
    day = table[predlog.TIMESTAMP][0].as_py().date()
    directory = predlog.partition_dir(log_root, MODEL, day)
    import os

    os.makedirs(directory, exist_ok=True)
    path = f"{directory}/{predlog.segment_name(writer, next(_seq))}"
    pq.write_table(table, path + ".tmp")
    os.replace(path + ".tmp", path)
    return predlog.Segment(path, os.path.getsize(path), day)


def traffic(log_root: str, version: str, rows: int, start_us: int, step_us: int, seed: int, shift: float = 0.0,
            segments: int = 1, first_id: int = 0) -> list[predlog.Segment]:
    """``rows`` demo rows, ``step_us`` apart from ``start_us``, in ``segments`` segments."""
    cols = demo_data.generate(rows, seed=seed, shift=shift)
    ts = start_us + step_us * np.arange(rows, dtype=np.int64)
    out = []
    for part in np.array_split(np.arange(rows), segments):
        sub = {k: v[part] for k, v in cols.items()}
        out.append(write_log(log_root, log_table(sub, version, ts[part], first_id + int(part[0]))))
    return out
