"""Feedback labels joined to predictions, per version and bucket: the live-quality data.

When the monitor reads a prediction segment it keeps *keys* for it: ``(request_id,
row_index)`` -> version, bucket (the window position of the prediction) and the
prediction itself (probabilities, or the regression output). Feedback rows join those
keys; a label therefore counts in the window of its prediction however late it comes
(within ``live.horizon_s``). A label whose prediction the monitor has not read yet is
kept as an orphan and joined on a later tick. A pair labelled twice keeps the label
received last.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from contracts import feedback as fb
from contracts import predlog

BUCKET = "bucket"
PRED = "pred"
Y = "y"
LABEL_TS = "label_ts"
JOIN_KEYS = [predlog.REQUEST_ID, predlog.ROW_INDEX]
_IDS = pa.dictionary(pa.int32(), pa.string())
KEYS_SCHEMA = pa.schema([  # ids and versions as dictionaries: a request's rows share one id
    pa.field(predlog.REQUEST_ID, _IDS), pa.field(predlog.ROW_INDEX, pa.int32()),
    pa.field(predlog.TIMESTAMP, pa.int64()), pa.field(predlog.VERSION, pa.dictionary(pa.int8(), pa.string())),
    pa.field(BUCKET, pa.int64()), pa.field(PRED, pa.list_(pa.float64())),
])
_PLAIN_KEYS = pa.schema([f.with_type(pa.string()) if pa.types.is_dictionary(f.type) else f
                         for f in KEYS_SCHEMA])  # as joined rows carry them


def keys_table(request_ids, row_index, ts_us: np.ndarray, version: str, buckets: np.ndarray,
               pred: np.ndarray) -> pa.Table:
    """Join keys of one version's rows; ``pred`` is [n, C] probabilities or [n] values."""
    pred = np.asarray(pred, dtype=np.float64)
    pred = pred.reshape(pred.shape[0], -1)
    flat = pa.array(pred.reshape(-1))
    offsets = pa.array(np.arange(0, pred.size + 1, pred.shape[1], dtype=np.int32))
    return pa.table({
        predlog.REQUEST_ID: _array(request_ids, _IDS),
        predlog.ROW_INDEX: _array(row_index, pa.int32()),
        predlog.TIMESTAMP: pa.array(ts_us, pa.int64()),
        predlog.VERSION: pa.DictionaryArray.from_arrays(np.zeros(len(ts_us), np.int8), pa.array([version])),
        BUCKET: pa.array(buckets, pa.int64()),
        PRED: pa.ListArray.from_arrays(offsets, flat),
    }, schema=KEYS_SCHEMA)


def _array(values, kind: pa.DataType) -> pa.Array:
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if not isinstance(values, pa.Array):
        values = pa.array(values)
    if values.type == kind:
        return values
    if pa.types.is_dictionary(kind) and not pa.types.is_dictionary(values.type):
        return _runs(values.cast(kind.value_type)).cast(kind)
    return values.cast(kind)


def _runs(values: pa.Array) -> pa.DictionaryArray:
    """Dictionary array of ``values`` with one dictionary entry per run of equal neighbours
    (a request's rows are logged together): no hashing, and unique values stay as they are
    under an identity index. A value in two runs is in the dictionary twice."""
    n = len(values)
    if values.null_count:
        return pc.dictionary_encode(values)
    new = np.ones(n, dtype=bool)
    if n > 1:
        new[1:] = pc.not_equal(values.slice(1), values.slice(0, n - 1)).to_numpy(zero_copy_only=False)
    if new.sum() > n // 2:
        return pa.DictionaryArray.from_arrays(pa.array(np.arange(n, dtype=np.int32)), values)
    indices = (np.cumsum(new) - 1).astype(np.int32)
    return pa.DictionaryArray.from_arrays(pa.array(indices), values.filter(pa.array(new)))


def as_keys(table: pa.Table) -> pa.Table:
    """A keys table in :data:`KEYS_SCHEMA` (keys stored before ids were dictionaries)."""
    if table.schema.equals(KEYS_SCHEMA):
        return table
    return pa.table({f.name: _array(table[f.name], f.type) for f in KEYS_SCHEMA}, schema=KEYS_SCHEMA)


def join(feedback: pa.Table, keys: pa.Table) -> tuple[pa.Table, pa.Table]:
    """(labelled rows, orphan feedback rows) of a feedback table against the keys."""
    fb_rows = feedback.select([*JOIN_KEYS, fb.LABEL, fb.VALUE, predlog.TIMESTAMP]).rename_columns(
        [*JOIN_KEYS, fb.LABEL, fb.VALUE, LABEL_TS])
    fb_rows = fb_rows.set_column(4, LABEL_TS, pc.cast(fb_rows[LABEL_TS], pa.int64()))
    return join_rows(fb_rows, keys)


def join_rows(rows: pa.Table, keys: pa.Table) -> tuple[pa.Table, pa.Table]:
    """(joined, unmatched) of label rows. Only the keys whose request id is labelled take
    part (see :func:`_labelled_keys`); one hash join on the plain ids, built on the label
    rows, matches them. The list column ``pred`` rides along by row number (Arrow's join
    does not carry list columns)."""
    candidates = _labelled_keys(keys, rows[predlog.REQUEST_ID])
    plain = candidates.drop_columns([PRED]).append_column(
        "_row", pa.array(np.arange(candidates.num_rows, dtype=np.int64)))
    numbered = rows.append_column("_label", pa.array(np.arange(rows.num_rows, dtype=np.int64)))
    found = plain.join(numbered, JOIN_KEYS, join_type="inner")
    joined = found.select(rows.column_names + [c for c in plain.column_names if c not in rows.column_names])
    unmatched = np.ones(rows.num_rows, dtype=bool)
    unmatched[found["_label"].to_numpy()] = False
    pred = candidates[PRED].take(joined["_row"])
    return joined.drop_columns(["_row"]).append_column(PRED, pred), rows.filter(pa.array(unmatched))


def _labelled_keys(keys: pa.Table, label_ids: pa.ChunkedArray) -> pa.Table:
    """The keys whose request id is among ``label_ids``, ids and versions plain: per batch the
    label ids are looked up in its id dictionary (the distinct ids, not every row) and only
    the rows of the ids found are taken (no copy of the other batches)."""
    wanted = pc.unique(label_ids.cast(pa.string()))
    parts = []
    for batch in keys.to_batches():
        ids = batch.column(predlog.REQUEST_ID)
        hit = pc.is_in(ids.dictionary, value_set=wanted).to_numpy(zero_copy_only=False)
        if hit.any():
            found = hit[ids.indices.fill_null(0).to_numpy()] & ids.is_valid().to_numpy(zero_copy_only=False)
            parts.append(batch.take(pa.array(np.flatnonzero(found))).cast(_PLAIN_KEYS))
    return pa.Table.from_batches(parts, _PLAIN_KEYS)


class LabelBook:
    """Labelled rows grouped by (version, bucket), newest label per prediction row."""

    def __init__(self) -> None:
        self._parts: dict[tuple[str, int], list[pa.Table]] = defaultdict(list)

    def add(self, joined: pa.Table) -> set[tuple[str, int]]:
        """Add joined rows; returns the (version, bucket) pairs that changed."""
        if joined.num_rows == 0:
            return set()
        changed = set()
        versions = joined[predlog.VERSION].to_numpy(zero_copy_only=False)
        buckets = joined[BUCKET].to_numpy()
        for version, bucket in set(zip(versions.tolist(), buckets.tolist())):
            mask = (versions == version) & (buckets == bucket)
            self._parts[(version, bucket)].append(joined.filter(pa.array(mask)))
            changed.add((version, bucket))
        return changed

    def rows(self, version: str, buckets) -> pa.Table | None:
        """Labelled rows of these buckets, one per prediction row (latest label wins)."""
        parts = [t for b in buckets for t in self._parts.get((version, b), [])]
        if not parts:
            return None
        table = pa.concat_tables(parts)
        order = np.argsort(table[LABEL_TS].to_numpy(), kind="stable")
        table = table.take(pa.array(order))
        last: dict[tuple[str, int], int] = {}
        for i, key in enumerate(zip(table[predlog.REQUEST_ID].to_pylist(), table[predlog.ROW_INDEX].to_pylist())):
            last[key] = i
        return table.take(pa.array(sorted(last.values()), pa.int64()))

    def prune(self, oldest_ts_us: int) -> None:
        """Forget buckets whose newest prediction is older than ``oldest_ts_us``."""
        for key in list(self._parts):
            newest = max(pc.max(t[predlog.TIMESTAMP]).as_py() for t in self._parts[key])
            if newest < oldest_ts_us:
                del self._parts[key]

    def versions(self) -> list[str]:
        return sorted({v for v, _ in self._parts})

    def buckets(self, version: str) -> list[int]:
        return sorted(b for v, b in self._parts if v == version)


def live_metrics(table: pa.Table | None, schema, min_rows: int) -> dict:
    """``labelled_rows`` and, with at least ``min_rows`` of them, the task metrics."""
    from monitoring import quality

    if table is None or table.num_rows == 0:
        return {"labelled_rows": 0}
    pred = table[PRED].combine_chunks()
    width = int(pc.list_value_length(pred)[0].as_py())
    values = pred.flatten().to_numpy().reshape(-1, width)
    if schema.task == "classification":
        index = {label: i for i, label in enumerate(schema.class_labels)}
        y = np.array([index.get(v, -1) for v in table[fb.LABEL].to_pylist()], dtype=np.int64)
        ok = (y >= 0) & (width == len(index))
        y, values = y[ok], values[ok]
        metrics = quality.classification(y, values) if y.size >= min_rows else {}
    else:
        y = table[fb.VALUE].to_numpy(zero_copy_only=False).astype(np.float64)
        ok = np.isfinite(y)
        y, values = y[ok], values[ok, 0]
        metrics = quality.regression(y, values) if y.size >= min_rows else {}
    return {"labelled_rows": int(y.size), **metrics}
