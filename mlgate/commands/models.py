"""``mlgate models``: read and write the model registry."""

from __future__ import annotations

import argparse
import json

from mlgate.commands import acting_flags, config_of
from mlgate.commands.model_policy import add_policy_command
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
    forced = f" (forced past {'a failed gate' if event.gate == 'failed' else 'a missing gate'})" if event.forced else ""
    previous = f"; version {event.previous_production} archived" if event.previous_production else ""
    print(f"{event.model} version {event.version} is production{forced}{previous}")
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from mlgate.credentials import admin_action
    from training.datastore import DataStore
    from training.regate import evaluate_version

    cfg = config_of(args)
    dataset = DataStore(cfg.data_root).get(args.data, args.data_version)
    target = f"{args.name}/{args.version}"
    detail = {"dataset": f"{dataset.name}/{dataset.version}", "on_behalf_of": args.by}
    with admin_action(cfg, args.token_file, "models.evaluate", target, detail) as act:
        record = evaluate_version(_registry(args, cfg), args.name, args.version, dataset, cfg.training,
                                  actor=act.identity.name, actor_id=act.identity.id)
        act.detail.update(gate_seq=record.seq, passed=record.decision["passed"])
    decision = record.decision
    against = decision["compared_with"]
    print(f"{args.name} version {args.version} on dataset {dataset.name} v{dataset.version}"
          f"{f' against production version {against}' if against else ''}: gate "
          f"{'passed' if decision['passed'] else 'FAILED'} (recorded, gate record {record.seq})")
    for reason in decision["reasons"]:
        print(f"  failed: {reason}")
    return 0 if decision["passed"] else 1


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


def _stage_commands(msub) -> None:
    p = msub.add_parser("promote", help="make a version production (refuses a failed or missing gate unless "
                        "--force)")
    p.add_argument("name")
    p.add_argument("version", type=int)
    p.add_argument("--reason", help="why (recorded; required with --force)")
    p.add_argument("--force", action="store_true", help="promote even though the version failed its gate or "
                   "has none (ungated: registered by hand and never evaluated)")
    acting_flags(p)
    p.set_defaults(fn=_promote)
    p = msub.add_parser("evaluate", help="evaluate and gate a registered version on a dataset's test split, "
                        "and record the decision (exit 1 when the gate fails)",
                        description="The training pipeline's evaluation and gate (training.eval, training.gate), "
                        "against the production version when there is one. The decision is recorded beside the "
                        "version and is what `models promote` checks.")
    p.add_argument("name")
    p.add_argument("version", type=int)
    p.add_argument("--data", required=True, help="dataset name (see `mlgate data list`)")
    p.add_argument("--data-version", type=int, help="dataset version (default: latest)")
    acting_flags(p)
    p.set_defaults(fn=_evaluate)
    p = msub.add_parser("rollback", help="return to the production version before the current one")
    p.add_argument("name")
    p.add_argument("--reason", required=True, help="why (recorded)")
    acting_flags(p)
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
    add_policy_command(msub)
