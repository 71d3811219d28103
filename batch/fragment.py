"""Scoring one fragment, without Ray: read, validate, predict, write its part atomically.

A scoring actor holds one :class:`FragmentScorer` (the model loaded once) and calls
:meth:`FragmentScorer.score` per fragment. The part is renamed into place only when every
row of the fragment is written (its rejects file first), so an interrupted fragment leaves
nothing a later run would mistake for done.
"""

from __future__ import annotations

import logging
import os
import resource
import time
from dataclasses import replace

import numpy as np
import pyarrow as pa

from batch import output as out
from batch.job import FragmentResult, ScoreJob
from batch.plan import TMP_DIR, Fragment, part_path, rejects_path
from batch.source import ReadSpec, iter_fragment, read_schema
from batch.validate import check_batch
from contracts import fs as rfs
from contracts.clock import wall_clock_s
from registry.store import Registry
from serving.pipeline import ModelPipeline

log = logging.getLogger("mlgate.batch")


class FragmentScorer:
    def __init__(self, job: ScoreJob, pipeline: ModelPipeline | None = None) -> None:
        self.job = job
        self.pipeline = pipeline or ModelPipeline(Registry(job.registry_root).get(job.model, job.version),
                                                  device=job.device)
        self.schema = self.pipeline.schema
        self.src_fs = job.source.fs
        self.dest_fs, self.dest = rfs.resolve(job.dest)
        features = self.schema.feature_names
        self.read = ReadSpec(
            columns=tuple(features + [k for k in job.keys if k not in (out.ROW_KEY, out.FILE_KEY, *features)]),
            text_columns=tuple(features) if job.source.format == "csv" else (),
            batch_size=job.batch_size, csv_block_bytes=job.csv_block_bytes,
        )
        self.ready_at, self.ready_cpu_seconds = wall_clock_s(), time.process_time()

    def score(self, fragment: Fragment) -> FragmentResult:
        """Never raises for a bad fragment: the error is in the result and its part is not written."""
        result = FragmentResult(fragment.part, ready_at=self.ready_at, started_at=wall_clock_s(), pid=os.getpid(),
                                ready_cpu_seconds=self.ready_cpu_seconds)
        cpu = time.process_time()
        try:
            self._score(fragment, result)
        except Exception as exc:  # noqa: BLE001 - reported per fragment; the run goes on
            log.exception("fragment %s failed", fragment.part)
            result.error = f"{type(exc).__name__}: {exc}"
        result.finished_at = wall_clock_s()
        result.max_rss_bytes = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        result.cpu_seconds = time.process_time() - cpu
        return result

    def _score(self, fragment: Fragment, result: FragmentResult) -> None:
        job, file = self.job, self.job.source.files[fragment.file]
        in_schema = read_schema(self.src_fs, file, job.source.format, self.read)
        tmp = f"{self.dest}/{TMP_DIR}"
        scored = out.PartWriter(self.dest_fs, part_path(self.dest, fragment.part), tmp,
                                self._schema(job.keys, in_schema, self._prediction_fields()), job.rows_per_group)
        rejects = out.PartWriter(self.dest_fs, rejects_path(self.dest, fragment.part), tmp,
                                 self._schema(job.reject_keys, in_schema, [pa.field(out.REASON, pa.string())]),
                                 job.rows_per_group)
        try:
            batches = iter_fragment(self.src_fs, file, job.source.format, fragment.start, fragment.stop,
                                    self._read_spec(in_schema))
            for first_row, batch in batches:
                self._score_batch(batch, first_row, file.name, scored, rejects, result)
            if rejects.rows:
                rejects.commit()  # before the part: a part that exists has its rejects
            scored.commit()
        finally:
            rejects.abort()
            scored.abort()

    def _score_batch(self, batch: pa.RecordBatch, first_row: int, file_name: str,
                     scored: out.PartWriter, rejects: out.PartWriter, result: FragmentResult) -> None:
        checked = check_batch(self.schema, batch)
        result.rows_in += batch.num_rows
        if checked.prepared.rows:
            outputs = self.pipeline.predict([checked.prepared])
            kept = None if checked.valid is None else np.flatnonzero(checked.valid)
            scored.write(out.key_columns(list(self.job.keys), batch, first_row, file_name, kept)
                         + out.prediction_columns(self.schema, outputs, self.pipeline.name, self.job.version))
            result.rows_scored += checked.prepared.rows
        if checked.reasons:
            dropped = np.flatnonzero(~checked.valid)
            rejects.write(out.key_columns(list(self.job.reject_keys), batch, first_row, file_name, dropped)
                          + [pa.array(checked.reasons, pa.string())])
            result.rows_rejected += len(dropped)

    def _read_spec(self, in_schema: pa.Schema) -> ReadSpec:
        """Categorical text features (not keys) are read dictionary-encoded: a category per
        distinct value instead of a string per row."""
        text = (pa.string(), pa.large_string())
        dictionary = tuple(s.name for s in self.schema.inputs if s.categorical and s.name not in self.job.keys
                           and in_schema.field(s.name).type in text)
        return replace(self.read, dictionary_columns=dictionary)

    def _prediction_fields(self) -> list[pa.Field]:
        return out.prediction_fields(self.schema) + list(out.MODEL_FIELDS)

    @staticmethod
    def _schema(keys: tuple[str, ...], in_schema: pa.Schema, fields: list[pa.Field]) -> pa.Schema:
        return pa.schema([out.key_field(k, in_schema) for k in keys] + fields)
