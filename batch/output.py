"""Output rows of a batch run (keys, predictions, model) and parts written atomically."""

from __future__ import annotations

import posixpath
import uuid

import numpy as np
import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from registry.schema import ModelSchema

ROW_KEY = "_row"  # the row's index in its input file
FILE_KEY = "_file"  # the input file, relative to the input root
REASON = "reason"
LABELS = pa.dictionary(pa.int32(), pa.string())  # a few distinct values: stored and read as categories
MODEL_FIELDS = (pa.field("model_name", LABELS), pa.field("model_version", pa.int64()))


def prediction_fields(schema: ModelSchema) -> list[pa.Field]:
    """Classifiers: ``prob_<label>`` per class and ``predicted_label``; else the first output."""
    if schema.task == "classification":
        return [pa.field(f"prob_{label}", pa.float32()) for label in schema.class_labels] + [
            pa.field("predicted_label", LABELS)]
    first = schema.outputs[0]
    if schema.task == "regression" and not first.shape:
        return [pa.field(first.name, pa.float32())]
    return [pa.field(first.name, pa.list_(pa.float32()))]


def output_names(schema: ModelSchema) -> list[str]:
    return [f.name for f in prediction_fields(schema)] + [f.name for f in MODEL_FIELDS]


def key_field(name: str, input_schema: pa.Schema) -> pa.Field:
    if name == ROW_KEY:
        return pa.field(ROW_KEY, pa.int64())
    if name == FILE_KEY:
        return pa.field(FILE_KEY, pa.string())
    return input_schema.field(name)


def key_columns(keys: list[str], batch: pa.RecordBatch, first_row: int, file_name: str,
                rows: np.ndarray | None) -> list[pa.Array]:
    """Key columns of the batch's rows (all, or the positions ``rows``)."""
    n = batch.num_rows
    positions = np.arange(n) if rows is None else rows
    out = []
    for key in keys:
        if key == ROW_KEY:
            out.append(pa.array(first_row + positions, pa.int64()))
        elif key == FILE_KEY:
            out.append(pa.array(np.full(len(positions), file_name, dtype=object), pa.string()))
        else:
            col = batch.column(key)
            out.append(col if rows is None else col.take(pa.array(rows)))
    return out


def prediction_columns(schema: ModelSchema, outputs: dict[str, np.ndarray], model_name: str,
                       version: int) -> list[pa.Array]:
    """Prediction columns, then the model's name and version (``prediction_fields`` + ``MODEL_FIELDS``)."""
    if schema.task == "classification":
        probs = outputs["probabilities"]
        cols = [pa.array(probs[:, j]) for j in range(probs.shape[1])]
        index = {label.encode(): i for i, label in enumerate(schema.class_labels)}
        codes = np.fromiter(map(index.__getitem__, outputs["label"]), dtype=np.int32, count=len(probs))
        cols.append(pa.DictionaryArray.from_arrays(codes, pa.array(schema.class_labels, pa.string())))
    else:
        y = outputs[schema.outputs[0].name].astype(np.float32, copy=False)
        cols = [pa.array(y)] if y.ndim == 1 else [pa.array(list(y.reshape(len(y), -1)), pa.list_(pa.float32()))]
    rows = len(cols[0])
    return cols + [pa.DictionaryArray.from_arrays(np.zeros(rows, dtype=np.int32), pa.array([model_name])),
                   pa.array(np.full(rows, version, dtype=np.int64))]


class PartWriter:
    """Streams a part to ``{dest}/_tmp/`` and renames it into place on ``commit``."""

    def __init__(self, fs: pafs.FileSystem, final_path: str, tmp_dir: str, schema: pa.Schema, rows_per_group: int):
        self.fs, self.final_path, self.schema = fs, final_path, schema
        self.tmp_path = f"{tmp_dir}/{posixpath.basename(final_path)}.{uuid.uuid4().hex}"
        self.rows_per_group = rows_per_group
        self.rows = 0
        self._buffer: list[pa.Table] = []
        self._buffered = 0
        self._writer: pq.ParquetWriter | None = None
        self._tmp_exists = False

    def write(self, columns: list[pa.Array]) -> None:
        table = pa.Table.from_arrays(columns, schema=self.schema)
        self._buffer.append(table)
        self._buffered += table.num_rows
        self.rows += table.num_rows
        if self._buffered >= self.rows_per_group:
            self._flush()

    def _flush(self) -> None:
        if self._writer is None:
            self.fs.create_dir(posixpath.dirname(self.tmp_path), recursive=True)
            self._writer = pq.ParquetWriter(self.tmp_path, self.schema, filesystem=self.fs,
                                            use_dictionary=_dictionary_columns(self.schema))
            self._tmp_exists = True
        if self._buffer:
            self._writer.write_table(pa.concat_tables(self._buffer), row_group_size=max(self._buffered, 1))
        self._buffer, self._buffered = [], 0

    def commit(self) -> None:
        self._flush()
        self._writer.close()
        self._writer = None
        self.fs.create_dir(posixpath.dirname(self.final_path), recursive=True)
        self.fs.move(self.tmp_path, self.final_path)
        self._tmp_exists = False

    def abort(self) -> None:
        """Drop what was written (a no-op after ``commit``)."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        if self._tmp_exists:
            self.fs.delete_file(self.tmp_path)
            self._tmp_exists = False


def _dictionary_columns(schema: pa.Schema) -> list[str]:
    """Dictionary pages for text only: trying them on floats and row numbers costs a third of a write."""
    text = (pa.types.is_string, pa.types.is_large_string, pa.types.is_binary, pa.types.is_dictionary)
    return [f.name for f in schema if any(is_type(f.type) for is_type in text)]
