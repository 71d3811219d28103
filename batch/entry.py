"""The score entrypoint: its flags and its flow, for ``mlgate score`` (which registers the
flags as a subcommand) and ``python -m batch`` (which parses them itself, as a Ray job).

It imports the typed config root (``mlgate.config``) and the Ray connection helper
(``mlgate.raycluster``), not the CLI.
"""

from __future__ import annotations

import argparse
import logging
import sys


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True, help="NAME (latest version), NAME:VERSION or NAME@STAGE")
    p.add_argument("--input", required=True, help="a .parquet/.csv file, a directory of them, or a URI (s3://...)")
    p.add_argument("--output", required=True, help="output directory (local path or URI)")
    p.add_argument("--key", action="append", metavar="COL[,COL...]",
                   help="key columns to copy to the output (repeatable; _row: row index in its file, "
                        "_file: input file); default: every non-feature column, _file if several files, _row")
    p.add_argument("--batch-size", type=int, help="rows per model call (default 4096)")
    p.add_argument("--concurrency", type=int, help="scoring actors (default: one per free CPU, or per GPU)")
    p.add_argument("--gpu", action=argparse.BooleanOptionalAction, default=None,
                   help="GPU actors, one GPU each (default: when the cluster has GPUs)")
    p.add_argument("--format", choices=("parquet", "csv"), help="input format (default: from file names)")
    p.add_argument("--registry", help="model registry root (default: registry_root of the config)")
    p.add_argument("--address", help="Ray cluster address ('auto' or host:port); default: start Ray locally")
    p.add_argument("--config", default=argparse.SUPPRESS, help="YAML config file (also MLGATE_CONFIG)")
    p.add_argument("--no-progress", action="store_true", help="no progress line on stderr")


DESCRIPTION = ("Score every row of --input with a model version and write Parquet parts to --output: "
               "the key columns, the predictions, the model name and version. Rows that fail the "
               "model's schema go to OUTPUT/_rejects/ with the reason. Run it again to score only "
               "what an interrupted run left; a finished output is left unchanged.")


def score(args: argparse.Namespace, *, join_job: bool = False) -> int:
    """Plan (before Ray starts: mistakes fail fast), score what is pending, print the summary.
    ``join_job``: this process is a Ray job's driver; it joins the job's cluster."""
    from batch.run import execute, plan_run
    from mlgate.config import load_config

    cfg = load_config(getattr(args, "config", None), {
        "registry_root": args.registry, "ray.address": args.address, "batch.batch_size": args.batch_size,
        "batch.concurrency": args.concurrency, "batch.gpu": args.gpu,
    })
    plan = plan_run(args.model, args.input, args.output, registry_root=cfg.registry_root, cfg=cfg.batch,
                    keys=_keys(args.key), fmt=args.format)
    try:
        if plan.pending:
            _start_ray(cfg, join_job)
        summary = execute(plan, cfg.batch, progress=not args.no_progress)
    except KeyboardInterrupt:
        print("interrupted: run the same command again to score what is missing", file=sys.stderr)
        return 130
    finally:
        _stop_ray()
    print(summary.describe())
    return 0 if summary.ok else 1


def _keys(values: list[str] | None) -> list[str] | None:
    if not values:
        return None
    return [k.strip() for value in values for k in value.split(",") if k.strip()]


def _start_ray(cfg, join_job: bool) -> None:
    from mlgate import raycluster

    if join_job:  # a Ray job's driver (RAY_ADDRESS set by Ray): join that cluster, as the job API expects
        raycluster.loopback_env()
        import ray

        ray.init(log_to_driver=False)
    else:
        raycluster.init(cfg.ray, log_to_driver=False)
    import ray.data  # noqa: F401 - configures its loggers on import; quieten them after

    logging.getLogger("ray.data").setLevel(logging.WARNING)  # our progress line replaces its INFO lines


def _stop_ray() -> None:
    if "ray" in sys.modules:
        import ray

        ray.shutdown()
