"""A writer killed with SIGKILL mid-stream leaves only whole segments: readers never see a
half-written file, and everything published before the kill reads back complete."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq

from contracts import fs as rfs
from contracts import predlog
from tests.polling import until

REPO = Path(__file__).resolve().parents[3]
ROWS_PER_REQUEST = 4
WRITER = f"""
import sys, time
import numpy as np
from registry.schema import FeatureSpec, ModelSchema
from serving.config import PredictionLogConfig
from serving.observers import RequestRecord
from serving.predlog import PredictionLogWriter
schema = ModelSchema(kind="tabular", task="classification", class_labels=("a", "b"),
                     inputs=(FeatureSpec(name="x", datatype="FP64"),), outputs=ModelSchema.classifier_outputs(2))
writer = PredictionLogWriter(sys.argv[1], PredictionLogConfig(flush_interval_s=0.01, max_rows=400))
i = 0
while True:  # until killed
    x = np.arange({ROWS_PER_REQUEST}, dtype=np.float64) + i
    writer.buffer.record(RequestRecord(f"r{{i}}", int(time.time() * 1e6), "m", "1", "v2", 200, 1.0, None,
                                {ROWS_PER_REQUEST}, {{"x": x}}, None, schema))
    i += 1
"""


def test_sigkill_during_writes_leaves_only_whole_segments(tmp_path):
    root = str(tmp_path / "logs")
    proc = subprocess.Popen([sys.executable, "-c", WRITER, root], cwd=REPO, stderr=subprocess.PIPE, text=True)
    try:
        until(lambda: len(predlog.list_segments(root, "m")) >= 5, 60, "five published segments", proc=proc,
              detail=lambda: proc.stderr.read() if proc.poll() is not None else "")
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(30)
    segments = predlog.list_segments(root, "m")
    for seg in segments:  # each one whole: footer, schema, every request's rows
        table = pq.read_table(seg.path)
        assert table.num_rows > 0 and table.num_rows % ROWS_PER_REQUEST == 0
        assert list(table.schema)[:len(predlog.FIXED_FIELDS)] == predlog.FIXED_FIELDS
    assert predlog.read_logs(root, "m").num_rows == sum(pq.read_metadata(s.path).num_rows for s in segments)


def test_publish_flushes_the_file_before_the_rename_and_the_directory_after(tmp_path, monkeypatch):
    """The order that makes a rename durable (the spy sees each fsync with what exists then)."""
    synced: list[tuple[str, bool]] = []
    final = tmp_path / "seg.parquet"
    real_fsync = os.fsync

    def spy(fd: int) -> None:
        synced.append((os.readlink(f"/proc/self/fd/{fd}"), final.exists()))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", spy)
    tmp = tmp_path / ".seg.parquet.tmp"
    tmp.write_bytes(b"data")
    fs, _ = rfs.resolve(str(tmp_path))
    rfs.publish(fs, str(tmp), str(final))
    assert synced == [(str(tmp), False), (str(tmp_path), True)] and final.read_bytes() == b"data"
