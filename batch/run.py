"""A batch scoring run: plan (Ray-free), then score the missing fragments on a pool of
Ray Data actors that each load the model once, or in this process (tests, small inputs)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace

import pyarrow as pa

from batch import output as out
from batch import plan as bplan
from batch.config import BatchConfig
from batch.job import FragmentResult, ScoreJob
from batch.modelref import parse_model_ref, resolve
from batch.pool import run_on_ray
from batch.progress import Progress, ScoreSummary
from batch.source import Format, InputFile, ReadSpec, Source, open_source, read_schema, row_groups
from batch.validate import accepts
from contracts import fs as rfs
from contracts.clock import wall_clock_s
from contracts.errors import InvalidInput
from registry.schema import ModelSchema
from registry.store import Registry

OnResult = Callable[[FragmentResult], None]


@dataclass(frozen=True)
class RunPlan:
    job: ScoreJob
    manifest: bplan.Manifest
    pending: list[bplan.Fragment]
    planned_in_s: float = 0.0

    @property
    def pending_rows(self) -> int | None:
        rows = [f.rows for f in self.pending]
        return None if None in rows else sum(rows)


def plan_run(model: str, source: str, dest: str, *, registry_root: str, cfg: BatchConfig,
             keys: Sequence[str] | None = None, fmt: Format | None = None) -> RunPlan:
    """Resolve the model, list and check the input, and reconcile with what ``dest`` holds."""
    started = time.monotonic()
    version = resolve(Registry(registry_root), parse_model_ref(model))
    schema = version.schema
    if schema.kind != "tabular":
        raise InvalidInput(f"--model: {version.name} is a {schema.kind} model; batch scoring takes tabular models")
    src = open_source(_absolute(source), fmt)
    described = _describe(src, schema, cfg)
    key_list = resolve_keys(keys, described[0][0], schema, multi_file=len(src.files) > 1)
    for file, (in_schema, _) in zip(src.files, described):
        check_columns(file, in_schema, schema, key_list)
    planned = bplan.Manifest(
        model={"name": version.name, "version": version.version}, source=src.uri, format=src.format,
        files=[{"name": f.name, "size": f.size, "mtime_ns": f.mtime_ns} for f in src.files],
        keys=key_list, outputs=out.output_names(schema),
        fragments=bplan.plan_fragments([rows for _, rows in described], cfg.fragment_rows, cfg.max_row_group_splits),
    )
    dest = _absolute(dest)
    dest_fs, dest_path = rfs.resolve(dest)
    manifest = bplan.reconcile(dest_fs, dest_path, planned)
    job = ScoreJob(
        registry_root=_absolute(registry_root), model=version.name, version=version.version, source=src,
        dest=dest, keys=tuple(key_list), reject_keys=tuple(reject_keys(key_list, len(src.files) > 1)),
        batch_size=cfg.batch_size, rows_per_group=cfg.fragment_rows, csv_block_bytes=cfg.csv_block_bytes,
    )
    todo = bplan.pending(manifest, bplan.done_parts(dest_fs, dest_path))
    return RunPlan(job, manifest, todo, time.monotonic() - started)


def _absolute(uri: str) -> str:
    """Local paths made absolute, so that actors with another working directory find them."""
    return uri if "://" in uri else os.path.abspath(os.path.expanduser(uri))


def _describe(src: Source, schema: ModelSchema, cfg: BatchConfig) -> list[tuple[pa.Schema, list[int] | None]]:
    fs = src.fs
    spec = ReadSpec(text_columns=tuple(schema.feature_names) if src.format == "csv" else (),
                    csv_block_bytes=cfg.csv_block_bytes)

    def one(file: InputFile) -> tuple[pa.Schema, list[int] | None]:
        in_schema = read_schema(fs, file, src.format, spec)
        return in_schema, (row_groups(fs, file) if src.format == "parquet" else None)

    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(one, src.files))


def resolve_keys(keys: Sequence[str] | None, in_schema: pa.Schema, schema: ModelSchema,
                 multi_file: bool) -> list[str]:
    """The output's key columns: ``keys``, or every non-feature column, ``_file`` (several
    input files) and ``_row`` (the row's index in its file)."""
    generated = (out.ROW_KEY, out.FILE_KEY)
    if keys is None:
        taken = [g for g in generated if g in in_schema.names]
        if taken:
            raise InvalidInput(f"--input: has a column {taken[0]!r}, the name of a generated key; pass --key")
        features = set(schema.feature_names)
        keys = [n for n in in_schema.names if n not in features]
        keys += ([out.FILE_KEY] if multi_file else []) + [out.ROW_KEY]
    keys = list(keys)
    if len(set(keys)) != len(keys):
        raise InvalidInput(f"--key: a column is named twice in {keys}")
    clash = set(keys) & set(out.output_names(schema) + [out.REASON])
    if clash:
        raise InvalidInput(f"--key: {sorted(clash)[0]!r} is also an output column name; choose the keys with --key")
    return keys


def reject_keys(keys: list[str], multi_file: bool) -> list[str]:
    extra = ([out.FILE_KEY] if multi_file else []) + [out.ROW_KEY]
    return keys + [k for k in extra if k not in keys]


def check_columns(file: InputFile, in_schema: pa.Schema, schema: ModelSchema, keys: list[str]) -> None:
    for spec in schema.inputs:
        if spec.name not in in_schema.names:
            raise InvalidInput(f"--input: {file.name} has no column {spec.name!r} (a model input)")
        if not accepts(spec, in_schema.field(spec.name).type):
            kind = "categorical" if spec.categorical else "numeric"
            raise InvalidInput(f"--input: {file.name}: column {spec.name!r} is {in_schema.field(spec.name).type}; "
                               f"a {kind} feature cannot take that")
    for key in keys:
        if key not in (out.ROW_KEY, out.FILE_KEY) and key not in in_schema.names:
            raise InvalidInput(f"--key: {file.name} has no column {key!r}")


def score(model: str, source: str, dest: str, *, registry_root: str, cfg: BatchConfig | None = None,
          keys: Sequence[str] | None = None, fmt: Format | None = None, progress: bool = True) -> ScoreSummary:
    """Score ``source`` into ``dest`` on the connected Ray cluster; scores only missing parts."""
    cfg = cfg or BatchConfig()
    plan = plan_run(model, source, dest, registry_root=registry_root, cfg=cfg, keys=keys, fmt=fmt)
    return execute(plan, cfg, progress=progress)


def score_in_process(model: str, source: str, dest: str, *, registry_root: str, cfg: BatchConfig | None = None,
                     keys: Sequence[str] | None = None, fmt: Format | None = None,
                     progress: bool = False) -> ScoreSummary:
    """The same run, fragment after fragment in this process, without Ray."""
    cfg = cfg or BatchConfig()
    plan = plan_run(model, source, dest, registry_root=registry_root, cfg=cfg, keys=keys, fmt=fmt)
    return execute(plan, cfg, progress=progress, on_ray=False)


def execute(plan: RunPlan, cfg: BatchConfig, *, progress: bool = True, on_ray: bool = True) -> ScoreSummary:
    """Score the plan's pending fragments (on the connected Ray cluster, or in this process)."""
    started, started_at = time.monotonic(), wall_clock_s()  # actors' stamps are wall time
    job = plan.job
    summary = ScoreSummary(job.model, job.version, job.dest, len(plan.manifest.fragments),
                           len(plan.manifest.fragments) - len(plan.pending))
    results: list[FragmentResult] = []
    bar = Progress(plan.pending_rows, len(plan.pending), interval_s=cfg.progress_interval_s) if progress else None

    def on_result(result: FragmentResult) -> None:
        results.append(result)
        summary.add(result)
        if bar is not None:
            bar.update(result)

    if plan.pending:
        try:
            (run_on_ray if on_ray else _run_here)(plan, cfg, on_result)
        finally:
            if bar is not None:
                bar.close()
    if results:
        summary.startup_seconds = min(r.ready_at for r in results) - started_at
        summary.scoring_seconds = max(r.finished_at for r in results) - min(r.started_at for r in results)
    dest_fs, dest_path = rfs.resolve(job.dest)
    if not bplan.pending(plan.manifest, bplan.done_parts(dest_fs, dest_path)):
        bplan.finish(dest_fs, dest_path)
    summary.seconds = plan.planned_in_s + time.monotonic() - started
    return summary


def _run_here(plan: RunPlan, cfg: BatchConfig, on_result: OnResult) -> None:
    from batch.fragment import FragmentScorer

    device = {True: "cuda", False: "cpu", None: "auto"}[cfg.gpu]
    scorer = FragmentScorer(replace(plan.job, device=device))
    for fragment in plan.pending:
        on_result(scorer.score(fragment))
