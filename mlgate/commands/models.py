"""``mlgate models``: read and write the model registry."""

from __future__ import annotations

import argparse
import json

from mlgate.commands import config_of
from mlgate.commands.model_status import add_status_command


def _registry(args: argparse.Namespace, cfg=None):
    from registry import Registry

    return Registry((cfg or config_of(args)).registry_root)


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


def _promote(args: argparse.Namespace) -> int:
    from mlgate.credentials import admin_action

    cfg = config_of(args)
    detail = {"reason": args.reason or "", "force": args.force, "on_behalf_of": args.by}
    with admin_action(cfg, args.token_file, "models.promote", f"{args.name}/{args.version}", detail) as act:
        event = _registry(args, cfg).promote(args.name, args.version, actor=act.identity.name,
                                             actor_id=act.identity.id, reason=args.reason or "", force=args.force)
        act.detail.update(stage_seq=event.seq, previous_production=event.previous_production, forced=event.forced)
    forced = " (forced past a failed gate)" if event.forced else ""
    previous = f"; version {event.previous_production} archived" if event.previous_production else ""
    print(f"{event.model} version {event.version} is production{forced}{previous}")
    return 0


def _rollback(args: argparse.Namespace) -> int:
    from mlgate.credentials import admin_action

    cfg = config_of(args)
    with admin_action(cfg, args.token_file, "models.rollback", args.name,
                      {"reason": args.reason, "on_behalf_of": args.by}) as act:
        event = _registry(args, cfg).rollback(args.name, actor=act.identity.name, actor_id=act.identity.id,
                                              reason=args.reason)
        act.detail.update(stage_seq=event.seq, version=event.version, previous_production=event.previous_production)
    print(f"{event.model} rolled back: version {event.version} is production again "
          f"(version {event.previous_production} archived)")
    return 0


def _stages(args: argparse.Namespace) -> int:
    reg = _registry(args)
    state = reg.stages.state(args.name)
    history = [e.model_dump(mode="json") for e in reg.stage_history(args.name)]
    print(json.dumps({"model": args.name, "production": state.production,
                      "stages": {str(v): s for v, s in sorted(state.stages.items())}, "history": history}, indent=2))
    return 0


def _acting(p: argparse.ArgumentParser) -> None:
    """Flags of the commands that act as the credential's identity (recorded as the stage
    event's actor and in the audit trail)."""
    p.add_argument("--token-file", help="file holding an admin credential (default: MLGATE_TOKEN, "
                   "MLGATE_TOKEN_FILE, then the admin key mlgate up made)")
    p.add_argument("--by", help="on whose behalf (recorded as on_behalf_of in the audit trail; the actor "
                   "is always the credential's identity)")


def _stage_commands(msub) -> None:
    p = msub.add_parser("promote", help="make a version production (refuses a failed gate unless --force)")
    p.add_argument("name")
    p.add_argument("version", type=int)
    p.add_argument("--reason", help="why (recorded; required with --force)")
    p.add_argument("--force", action="store_true", help="promote even though the version failed its gate")
    _acting(p)
    p.set_defaults(fn=_promote)
    p = msub.add_parser("rollback", help="return to the production version before the current one")
    p.add_argument("name")
    p.add_argument("--reason", required=True, help="why (recorded)")
    _acting(p)
    p.set_defaults(fn=_rollback)
    p = msub.add_parser("stages", help="current stages and the full stage history of a model")
    p.add_argument("name")
    p.set_defaults(fn=_stages)


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
    _stage_commands(msub)
    add_status_command(msub)
