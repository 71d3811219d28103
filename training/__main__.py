"""``python -m training train ...``: the entry point of a training job.

``mlgate train`` submits exactly this through the Ray Job Submission API; it also runs
as a bare ``ray job submit --address http://HOST:8265 -- python -m training train ...``.
Roots are given explicitly (absolute paths or URIs the cluster can reach): a job's
working directory is the cluster's, not yours.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path

from training.config import TrainingConfig
from training.runs import new_run_id


def _root(value: str) -> str:
    return value if "://" in value else str(Path(value).expanduser().resolve())


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m training", description="mlgate training job entry point.")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    t = sub.add_parser("train", help="train, evaluate, gate and register one run (new or resumed)")
    t.add_argument("--data", help="dataset name under the data root (a new run)")
    t.add_argument("--data-version", type=int, help="dataset version (default: latest)")
    t.add_argument("--model", default="demo", help="registry model name to register under")
    t.add_argument("--run-id", help="run id (default: generated); with --resume, the run to resume")
    t.add_argument("--resume", action="store_true", help="continue --run-id from its last checkpoint")
    t.add_argument("--epochs", type=int, help="training epochs (overrides --config-json)")
    t.add_argument("--workers", type=int, help="Ray Train workers (overrides --config-json)")
    t.add_argument("--gpu", dest="use_gpu", action="store_true", default=None, help="one GPU per worker")
    t.add_argument("--no-gpu", dest="use_gpu", action="store_false", help="CPU only")
    t.add_argument("--registry-root", type=_root, default="var/registry", help="registry path or URI")
    t.add_argument("--data-root", type=_root, default="var/data", help="datasets path or URI")
    t.add_argument("--runs-root", type=_root, default="var/runs", help="runs path or URI")
    t.add_argument("--config-json", default="{}", help="the `training` config section as JSON")
    t.add_argument("--code-revision", help="git revision of the submitted code (default: detected)")
    t.add_argument("--submission-id", help="Ray job submission id, recorded with the attempt")
    return p


def request_from(args: argparse.Namespace):
    from training.pipeline import TrainRequest

    cfg = TrainingConfig.model_validate_json(args.config_json)
    overrides = {k: getattr(args, k) for k in ("epochs", "workers", "use_gpu") if getattr(args, k) is not None}
    cfg = TrainingConfig.model_validate({**cfg.model_dump(), **overrides})
    if args.resume and not args.run_id:
        raise SystemExit("--resume needs --run-id")
    return TrainRequest(run_id=args.run_id or new_run_id(args.model), registry_root=args.registry_root,
                        data_root=args.data_root, runs_root=args.runs_root, data=args.data,
                        data_version=args.data_version, model=args.model, resume=args.resume, config=cfg,
                        code_revision=args.code_revision, submission_id=args.submission_id)


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    args = build_parser().parse_args(argv)
    from training.pipeline import Interrupted, execute

    def stop(*_):
        raise Interrupted()

    signal.signal(signal.SIGTERM, stop)
    req = request_from(args)
    try:
        execute(req)
    except Interrupted:
        return 128 + signal.SIGTERM
    return 0


if __name__ == "__main__":
    sys.exit(main())
