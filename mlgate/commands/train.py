"""``mlgate train``: submit a training run as a Ray job and follow it."""

from __future__ import annotations

import argparse

from mlgate.commands import config_of


def _train(args: argparse.Namespace) -> int:
    from contracts.errors import InvalidInput
    from mlgate.raycluster import auth_token
    from training import submit
    from training.runs import new_run_id

    if not args.data and not args.resume:
        raise InvalidInput("--data: required for a new run (or --resume RUN_ID)")
    cfg = config_of(args, **{"training.epochs": args.epochs, "training.workers": args.workers,
                             "training.use_gpu": args.gpu,
                             "training.insecure_job_api": True if args.insecure else None})
    spec = submit.JobSpec(run_id=args.resume or args.run_id or new_run_id(args.model),
                          registry_root=cfg.registry_root, data_root=cfg.data_root, runs_root=cfg.runs_root,
                          data=args.data, data_version=args.data_version, model=args.model,
                          resume=bool(args.resume), config=cfg.training)
    status = submit.run(spec, args.address, auth_token, num_cpus=args.num_cpus or cfg.ray.num_cpus,
                        insecure=cfg.training.insecure_job_api)
    print(f"job for run {spec.run_id}: {status}")
    return 0 if status == "SUCCEEDED" else 1


def register(sub) -> None:
    p = sub.add_parser("train", help="train, evaluate, gate and register a model as a Ray job",
                       description="Submits `python -m training train ...` through the Ray Job Submission "
                                   "API (token auth: RAY_AUTH_TOKEN or ~/.ray/auth_token) to --address, or to "
                                   "a local cluster started for it; streams the job's logs and exits with "
                                   "its status (0 when it succeeded).")
    p.add_argument("--data", help="dataset name (see `mlgate data list`)")
    p.add_argument("--data-version", type=int, help="dataset version (default: latest)")
    p.add_argument("--model", default="demo", help="registry model name to register under (default demo)")
    p.add_argument("--epochs", type=int, help="training epochs (default: training.epochs)")
    p.add_argument("--workers", type=int, help="Ray Train workers (default: training.workers)")
    p.add_argument("--gpu", dest="gpu", action="store_true", default=None, help="one GPU per worker")
    p.add_argument("--no-gpu", dest="gpu", action="store_false", help="CPU only (default: GPU if the cluster has)")
    p.add_argument("--address", help="job API of a running cluster: HOST:8265 (https://, http:// on loopback) "
                                     "or a URL; default: start one locally")
    p.add_argument("--insecure", action="store_true", help="allow sending the cluster token over plain http:// "
                   "to a non-loopback --address (training.insecure_job_api)")
    p.add_argument("--num-cpus", type=int, help="CPUs of the local cluster (default: ray.num_cpus or all)")
    p.add_argument("--run-id", help="id of the new run (default: generated)")
    p.add_argument("--resume", metavar="RUN_ID", help="resume this run from its last checkpoint")
    p.add_argument("--config", default=argparse.SUPPRESS, help="YAML config file")
    p.set_defaults(fn=_train)
