"""The bare loop that ``mlgate score`` is measured against (issue 6), and a program of its own.

    .venv/bin/python benchmarks/bare_batch.py DATA REGISTRY BATCH_SIZE OUTPUT

Read the Parquet file in batches with pyarrow, the model version's ``Preprocessor.transform``,
the TorchScript forward (one torch thread), write the same output columns with a
``ParquetWriter``: no validation, no Ray. It imports only what the loop needs (numpy,
pyarrow, torch, the registry), so as a program it pays what a hand-written script would.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import torch

from registry.store import ModelVersion, Registry

ROWS_PER_GROUP = 131_072


def columns(batch: pa.RecordBatch, version: ModelVersion) -> dict[str, np.ndarray]:
    """Arrow -> the columns ``Preprocessor.transform`` takes, the cheapest way we know."""
    out = {}
    for spec in version.schema.inputs:
        arr = batch.column(spec.name)
        if spec.categorical:
            enc = pc.dictionary_encode(arr)
            levels = np.array(enc.dictionary.to_pylist() + [None], dtype=object)
            out[spec.name] = levels[enc.indices.fill_null(len(levels) - 1).to_numpy()]
        else:
            out[spec.name] = arr.to_numpy(zero_copy_only=False)
    return out


def bare_loop(data: Path, version: ModelVersion, batch_size: int, threads: int,
              dest: Path) -> tuple[float, float]:
    """(rows per second, CPU seconds) of read -> preprocess -> forward -> write in one process."""
    torch.set_num_threads(threads)
    pre, module, labels = version.preprocessor(), version.load_torch(), np.array(version.schema.class_labels)
    started, cpu = time.perf_counter(), time.process_time()
    pf = pq.ParquetFile(data)
    writer, pending, rows = None, [], 0
    for batch in pf.iter_batches(batch_size=batch_size):
        with torch.inference_mode():
            probs = module(torch.from_numpy(pre.transform(columns(batch, version)))).numpy()
        table = pa.table({"churn": batch.column("churn"), "_row": pa.array(np.arange(rows, rows + len(probs))),
                          "prob_stay": probs[:, 0], "prob_churn": probs[:, 1],
                          "predicted_label": pa.array(labels[probs.argmax(1)]),
                          "model_name": pa.array(np.full(len(probs), "demo", dtype=object), pa.string()),
                          "model_version": np.full(len(probs), version.version)})
        writer = writer or pq.ParquetWriter(dest, table.schema)
        pending.append(table)
        rows += len(probs)
        if sum(t.num_rows for t in pending) >= ROWS_PER_GROUP:
            writer.write_table(pa.concat_tables(pending), row_group_size=ROWS_PER_GROUP * 2)
            pending = []
    if pending:
        writer.write_table(pa.concat_tables(pending), row_group_size=ROWS_PER_GROUP * 2)
    writer.close()
    return rows / (time.perf_counter() - started), time.process_time() - cpu


if __name__ == "__main__":
    data, registry_root, batch_size, dest = sys.argv[1:5]
    bare_loop(Path(data), Registry(registry_root).get("demo"), int(batch_size), 1, Path(dest))
