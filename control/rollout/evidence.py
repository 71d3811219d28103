"""Live evidence of one window: what the production version and the candidate did.

Read from the prediction log (one record per row; a request's fixed columns repeat on
each of its rows, so ``row_index == 0`` is one record per request) and from the feedback
labels, for ``since <= ts < until``. Primary answers are every route but ``shadow``; a
shadow copy carries its primary request's id, so shadow and primary answers of the same
rows are paired by ``(request_id, row_index)``. Nothing here decides: :mod:`.decide` does.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, replace

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

import kernels
from contracts import feedback as fb
from contracts import predlog
from registry.schema import ModelSchema

SHADOW_ROUTE = "shadow"  # serving.dataplane.SHADOW_ROUTE: the route of a shadow copy
FAILED_STATUS = 500  # a status at or above this is a failure the caller saw (5xx, 503, 504)
LABEL_COLUMN = "label"  # a classifier's predicted class (ModelSchema.classifier_outputs)


@dataclass(frozen=True)
class Side:
    """One version's answers in the window."""

    requests: int = 0
    failed: int = 0
    p50_ms: float | None = None
    p99_ms: float | None = None
    labelled: int = 0
    accuracy: float | None = None  # classifiers, from feedback labels
    mae: float | None = None  # regressors, from feedback values
    estimated_rows: int = 0
    estimated_accuracy: float | None = None  # binary classifiers with a CBPE reference: before any label

    @property
    def error_rate(self) -> float | None:
        return self.failed / self.requests if self.requests else None


@dataclass(frozen=True)
class Evidence:
    """Both versions' answers in one window, and how they compare."""

    since: float
    until: float
    baseline: Side
    candidate: Side
    compared_rows: int = 0  # rows answered by both (each version's successful rows, for the divergence)
    js_divergence: float | None = None
    shadow_rows: int = 0  # shadowed rows paired with their primary answer
    shadow_agreement: float | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def prediction_column(schema: ModelSchema) -> str | None:
    """The log column holding one prediction per row: a classifier's label, a regressor's
    first scalar output; None for models with neither (their divergence is not checked)."""
    if schema.task == "classification" and schema.output(LABEL_COLUMN) is not None:
        return predlog.OUTPUT_PREFIX + LABEL_COLUMN
    if schema.task == "regression":
        scalar = next((o for o in schema.outputs if not o.shape and o.datatype != "BYTES"), None)
        return predlog.OUTPUT_PREFIX + scalar.name if scalar else None
    return None


def gather(log_root: str, model: str, baseline: int, candidate: int, schema: ModelSchema, *, since_s: float,
           until_s: float, shadow: bool, tolerance: float = 0.05,
           cbpe: dict[int, tuple[kernels.CbpeReference, str]] | None = None) -> Evidence:
    """The evidence of ``[since_s, until_s)``. ``shadow``: the candidate's answers are the
    shadow copies (its canary answers otherwise). ``cbpe``: per version, its CBPE reference and
    the output it reads (``probabilities[LABEL]``), for accuracy estimated before labels."""
    since, until = _utc(since_s), _utc(until_s)
    pred = prediction_column(schema)
    score_columns = {v: _score_column(schema, column) for v, (_, column) in (cbpe or {}).items()}
    columns = [predlog.REQUEST_ID, predlog.ROW_INDEX, predlog.VERSION, predlog.ROUTE, predlog.STATUS,
               predlog.LATENCY_MS] + ([pred] if pred else []) + sorted({c for c, _ in score_columns.values() if c})
    table = predlog.read_logs(log_root, model, since, until, columns)
    if table.num_rows == 0:
        return Evidence(since_s, until_s, Side(), Side())
    is_shadow = pc.equal(table[predlog.ROUTE], SHADOW_ROUTE)
    base = table.filter(pc.and_(pc.equal(table[predlog.VERSION], str(baseline)), pc.invert(is_shadow)))
    wanted = is_shadow if shadow else pc.invert(is_shadow)
    cand = table.filter(pc.and_(pc.equal(table[predlog.VERSION], str(candidate)), wanted))
    labels = _labels(log_root, model, since) if pred else None
    kind = schema.task
    base_ok, cand_ok = _ok(base), _ok(cand)  # the answered rows: what latency, quality and agreement read
    base_side = _estimated(_side(base, base_ok, pred, labels, kind), base_ok, (cbpe or {}).get(baseline),
                           score_columns.get(baseline))
    cand_side = _estimated(_side(cand, cand_ok, pred, labels, kind), cand_ok, (cbpe or {}).get(candidate),
                           score_columns.get(candidate))
    js, compared = _divergence(base_ok, cand_ok, pred, schema)
    rows, agreement = _agreement(base_ok, cand_ok, pred, kind, tolerance) if shadow and pred else (0, None)
    return Evidence(since_s, until_s, base_side, cand_side, compared, js, rows, agreement)


def _utc(t_s: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(t_s, dt.UTC)


def _ok(table: pa.Table) -> pa.Table:
    return table.filter(pc.less(table[predlog.STATUS], 300))


def _first_rows(table: pa.Table) -> pa.Table:
    """One record per request (its fixed columns repeat on each of its rows)."""
    return table.filter(pc.equal(table[predlog.ROW_INDEX], 0))


def _side(table: pa.Table, answered: pa.Table, pred: str | None, labels: pa.Table | None, kind: str) -> Side:
    """``table``: one version's rows in the window; ``answered``: those of them answered (2xx)."""
    per_request = _first_rows(table)
    n = per_request.num_rows
    if n == 0:
        return Side()
    failed = int(pc.sum(pc.greater_equal(per_request[predlog.STATUS], FAILED_STATUS)).as_py() or 0)
    latency_ms = _first_rows(answered)[predlog.LATENCY_MS].to_numpy()
    p50, p99 = (float(np.percentile(latency_ms, 50)), float(np.percentile(latency_ms, 99))) if len(latency_ms) \
        else (None, None)
    labelled, accuracy, mae = _quality(answered, pred, labels, kind)
    return Side(n, failed, p50, p99, labelled, accuracy, mae)


def _score_column(schema: ModelSchema, column: str) -> tuple[str, int] | None:
    """``probabilities[LABEL]`` as (log column, index in the row's vector); None if the schema lacks it."""
    name, _, label = column.partition("[")
    label = label.rstrip("]")
    if schema.output(name) is None or label not in schema.class_labels:
        return None
    return predlog.OUTPUT_PREFIX + name, schema.class_labels.index(label)


def _estimated(side: Side, answered: pa.Table, reference, where: tuple[str, int] | None) -> Side:
    """``side`` with its CBPE accuracy estimate from the answered rows' scores (kernels.cbpe)."""
    if reference is None or where is None or where[0] not in answered.column_names or not answered.num_rows:
        return side
    scores = pc.list_element(answered[where[0]], where[1])
    values = np.asarray(pc.cast(scores, pa.float64()).to_numpy(zero_copy_only=False), dtype=np.float64)
    values = values[np.isfinite(values)]
    if not values.size:
        return side
    estimate = reference[0].estimate(values)["accuracy"]
    return replace(side, estimated_rows=int(values.size), estimated_accuracy=float(estimate))


def _labels(log_root: str, model: str, since: dt.datetime) -> pa.Table:
    """Feedback received since the window opened, the last label of a row winning."""
    table = fb.read_feedback(log_root, fb.list_feedback(log_root, model, since))
    if table.num_rows == 0:
        return table
    table = table.append_column("_order", pa.array(np.arange(table.num_rows)))
    last = table.group_by([predlog.REQUEST_ID, predlog.ROW_INDEX]).aggregate([("_order", "max")])
    return table.take(last["_order_max"])


def _quality(answered: pa.Table, pred: str | None, labels: pa.Table | None,
             kind: str) -> tuple[int, float | None, float | None]:
    if pred is None or labels is None or labels.num_rows == 0 or answered.num_rows == 0:
        return 0, None, None
    joined = answered.select([predlog.REQUEST_ID, predlog.ROW_INDEX, pred]).join(
        labels.select([predlog.REQUEST_ID, predlog.ROW_INDEX, fb.LABEL, fb.VALUE]),
        [predlog.REQUEST_ID, predlog.ROW_INDEX], join_type="inner")
    if kind == "classification":
        joined = joined.filter(pc.is_valid(joined[fb.LABEL]))
        n = joined.num_rows
        hits = pc.sum(pc.equal(pc.cast(joined[pred], pa.string()), joined[fb.LABEL])).as_py() if n else 0
        return n, (hits / n if n else None), None
    joined = joined.filter(pc.is_valid(joined[fb.VALUE]))
    n = joined.num_rows
    if not n:
        return 0, None, None
    err = np.abs(joined[pred].to_numpy(zero_copy_only=False).astype(np.float64) - joined[fb.VALUE].to_numpy())
    return n, None, float(np.mean(err))


def _divergence(base: pa.Table, cand: pa.Table, pred: str | None, schema: ModelSchema) -> tuple[float | None, int]:
    """Jensen-Shannon divergence (base 2) of the two versions' answered predictions (kernels)."""
    if pred is None:
        return None, 0
    a, b = base[pred], cand[pred]
    n = min(len(a), len(b))
    if not n:
        return None, 0
    if schema.task == "classification":
        codes = {label: i for i, label in enumerate(schema.class_labels)}
        to_codes = np.vectorize(lambda v: codes.get(v, len(codes)), otypes=[np.int64])
        return float(kernels.jensen_shannon_categorical(to_codes(_strings(a)), to_codes(_strings(b)))), n
    return float(kernels.jensen_shannon(_floats(a), _floats(b))), n


def _agreement(base: pa.Table, shadow: pa.Table, pred: str, kind: str, tolerance: float) -> tuple[int, float | None]:
    """Rows answered by both the primary and its shadow copy, and the share where they agree."""
    keys = [predlog.REQUEST_ID, predlog.ROW_INDEX]
    left = base.select([*keys, pred])
    right = shadow.select([*keys, pred]).rename_columns([*keys, "_shadow"])
    pairs = left.join(right, keys, join_type="inner")
    n = pairs.num_rows
    if not n:
        return 0, None
    if kind == "classification":
        same = _strings(pairs[pred]) == _strings(pairs["_shadow"])
    else:
        same = np.isclose(_floats(pairs["_shadow"]), _floats(pairs[pred]), rtol=tolerance, atol=1e-9)
    return n, float(np.mean(same))


def _strings(col) -> np.ndarray:
    return np.asarray(pc.cast(col, pa.string()).to_pylist(), dtype=object)


def _floats(col) -> np.ndarray:
    return np.asarray(pc.cast(col, pa.float64()).to_numpy(zero_copy_only=False), dtype=np.float64)
