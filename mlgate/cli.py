"""The ``mlgate`` command line: parses arguments and calls library functions."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Callable

from registry.errors import MlgateError

Handler = Callable[[argparse.Namespace], int]


def _config(args: argparse.Namespace, **overrides):
    from mlgate.config import load_config

    return load_config(getattr(args, "config", None), overrides)


def cmd_up(args: argparse.Namespace) -> int:
    from mlgate import up

    cfg = _config(args, **{"serving.host": args.host, "serving.port": args.port, "ray.address": args.address})
    return up.run(cfg)


def cmd_models_list(args: argparse.Namespace) -> int:
    from registry import Registry

    reg = Registry(_config(args).registry_root)
    for name in reg.list_models():
        print(f"{name}\tversions: {','.join(map(str, reg.list_versions(name)))}")
    return 0


def cmd_models_show(args: argparse.Namespace) -> int:
    from registry import Registry

    reg = Registry(_config(args).registry_root)
    mv = reg.get(args.name, args.version)
    print(json.dumps({**mv.summary(), "schema": mv.schema.model_dump(mode="json")}, indent=2))
    return 0


def cmd_models_register(args: argparse.Namespace) -> int:
    from registry import ModelSchema, Registry
    from registry.torch_io import register_torch_model

    schema = ModelSchema.model_validate_json(open(args.schema, "rb").read())
    pre = None
    if args.preprocessor:
        from registry.preprocess import Preprocessor

        pre = Preprocessor.from_json(schema, open(args.preprocessor).read())
    mv = register_torch_model(Registry(_config(args).registry_root), args.name, args.model, schema,
                              preprocessor=pre)
    print(f"registered {mv.name} version {mv.version}")
    return 0


def cmd_demo_data(args: argparse.Namespace) -> int:
    from mlgate.demo import write_demo_data

    path = write_demo_data(args.output, args.rows, seed=args.seed, shift=args.shift)
    print(f"wrote {args.rows} rows to {path}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="mlgate", description="Model-serving gateway on Ray.")
    p.add_argument("--config", help="YAML config file (also MLGATE_CONFIG)")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    up = sub.add_parser("up", help="serve the registry's models on Ray Serve until Ctrl-C")
    up.add_argument("--host", help="listen address (default 127.0.0.1)")
    up.add_argument("--port", type=int, help="HTTP port (default 8000)")
    up.add_argument("--config", default=argparse.SUPPRESS, help="YAML config file")
    up.add_argument("--address", help="Ray cluster address ('auto' or host:port); default: start Ray locally")
    up.set_defaults(fn=cmd_up)

    models = sub.add_parser("models", help="read and write the model registry")
    msub = models.add_subparsers(dest="models_command", required=True, metavar="ACTION")
    ls = msub.add_parser("list", help="list models and their versions")
    ls.set_defaults(fn=cmd_models_list)
    show = msub.add_parser("show", help="show one model version (latest by default)")
    show.add_argument("name")
    show.add_argument("--version", type=int, help="version number (default: latest)")
    show.set_defaults(fn=cmd_models_show)
    reg = msub.add_parser("register", help="register a TorchScript model file as a new version")
    reg.add_argument("name")
    reg.add_argument("--model", required=True, help="TorchScript file (torch.jit.save)")
    reg.add_argument("--schema", required=True, help="schema JSON file (registry.ModelSchema)")
    reg.add_argument("--preprocessor", help="fitted preprocessor JSON (tabular models)")
    reg.set_defaults(fn=cmd_models_register)

    demo = sub.add_parser("demo-data", help="write rows of the demo dataset (Parquet or CSV by extension)")
    demo.add_argument("--rows", type=int, required=True, help="number of rows")
    demo.add_argument("--output", required=True, help="output file: .parquet or .csv")
    demo.add_argument("--shift", type=float, default=0.0, help="drift: move some features by ~S std")
    demo.add_argument("--seed", type=int, default=1, help="random seed (the demo model trains on seed 0)")
    demo.set_defaults(fn=cmd_demo_data)
    return p


def main(argv: list[str] | None = None) -> int:
    from mlgate.raycluster import loopback_env

    loopback_env()  # before anything imports ray: it reads this at import time
    args = build_parser().parse_args(argv)
    try:
        return args.fn(args)
    except MlgateError as exc:
        print(f"mlgate: error: {exc.message}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
