"""``mlgate models``: read and write the model registry."""

from __future__ import annotations

import argparse
import json

from mlgate.commands import config_of


def _registry(args: argparse.Namespace):
    from registry import Registry

    return Registry(config_of(args).registry_root)


def _list(args: argparse.Namespace) -> int:
    reg = _registry(args)
    for name in reg.list_models():
        print(f"{name}\tversions: {','.join(map(str, reg.list_versions(name)))}")
    return 0


def _show(args: argparse.Namespace) -> int:
    mv = _registry(args).get(args.name, args.version)
    print(json.dumps({**mv.summary(), "schema": mv.schema.model_dump(mode="json")}, indent=2))
    return 0


def _register(args: argparse.Namespace) -> int:
    from registry import ModelSchema
    from registry.preprocess import Preprocessor
    from registry.torch_io import register_torch_model

    with open(args.schema, "rb") as f:
        schema = ModelSchema.model_validate_json(f.read())
    pre = None
    if args.preprocessor:
        with open(args.preprocessor) as f:
            pre = Preprocessor.from_json(schema, f.read())
    mv = register_torch_model(_registry(args), args.name, args.model, schema, preprocessor=pre)
    print(f"registered {mv.name} version {mv.version}")
    return 0


def register(sub) -> None:
    models = sub.add_parser("models", help="read and write the model registry")
    msub = models.add_subparsers(dest="models_command", required=True, metavar="ACTION")
    p = msub.add_parser("list", help="list models and their versions")
    p.set_defaults(fn=_list)
    p = msub.add_parser("show", help="show one model version (latest by default)")
    p.add_argument("name")
    p.add_argument("--version", type=int, help="version number (default: latest)")
    p.set_defaults(fn=_show)
    p = msub.add_parser("register", help="register a TorchScript model file as a new version")
    p.add_argument("name")
    p.add_argument("--model", required=True, help="TorchScript file (torch.jit.save)")
    p.add_argument("--schema", required=True, help="schema JSON file (registry.ModelSchema)")
    p.add_argument("--preprocessor", help="fitted preprocessor JSON (tabular models)")
    p.set_defaults(fn=_register)
