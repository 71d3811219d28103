"""``mlgate data``: versioned training datasets (ingest, list, show)."""

from __future__ import annotations

import argparse
import json

from mlgate.commands import config_of

_SHOWN_REJECTS = 10


def _store(cfg):
    from contracts.errors import ConfigError
    from training.datastore import DataStore

    live = cfg.log_root.rstrip("/")
    if cfg.data_root.rstrip("/") == live or cfg.data_root.startswith(live + "/"):
        raise ConfigError("data_root: must not be inside log_root (live data is read-only for training)")
    return DataStore(cfg.data_root)


def _ingest(args: argparse.Namespace) -> int:
    from training.dataschema import DatasetSchema
    from training.ingest import ingest

    cfg = config_of(args, **{"training.split.seed": args.seed, "training.split.validation_share":
                             args.validation_share, "training.split.test_share": args.test_share})
    schema = None
    if args.schema:
        with open(args.schema, "rb") as f:
            schema = DatasetSchema.model_validate_json(f.read())
    result = ingest(_store(cfg), args.source, args.name, target=args.target, schema=schema,
                    split=cfg.training.split, task=args.task, group_by=args.group_by, drop=tuple(args.drop))
    ds = result.dataset
    rows = ds.manifest["rows"]
    verb = "published" if result.created else "unchanged, same content as"
    print(f"{verb} dataset {ds.name} version {ds.version} at {ds.uri}")
    print(f"  {rows['source']} rows: train {rows['train']}, validation {rows['validation']}, "
          f"test {rows['test']}, rejected {rows['rejected']}; fingerprint {ds.fingerprint[:16]}")
    if result.created and rows["rejected"]:
        rejected = ds.read("rejected").slice(0, _SHOWN_REJECTS).to_pydict()
        for row, why in zip(rejected["source_row"], rejected["reasons"]):
            print(f"  rejected row {row}: {why}")
        print(f"  all rejected rows with their reasons: {ds.uri}/rejected.parquet")
    return 0


def _list(args: argparse.Namespace) -> int:
    store = _store(config_of(args))
    for name in store.list_names():
        latest = store.get(name)
        print(f"{name}\tversions: {','.join(map(str, store.list_versions(name)))}\t"
              f"latest rows: {latest.manifest['rows']['source']}\tfingerprint: {latest.fingerprint[:16]}")
    return 0


def _show(args: argparse.Namespace) -> int:
    ds = _store(config_of(args)).get(args.name, args.version)
    print(json.dumps({**ds.manifest, "uri": ds.uri}, indent=2))
    return 0


def register(sub) -> None:
    data = sub.add_parser("data", help="versioned training datasets: ingest, list, show")
    dsub = data.add_subparsers(dest="data_command", required=True, metavar="ACTION")
    p = dsub.add_parser("ingest", help="validate a source and publish seeded train/validation/test splits",
                        description="SOURCE: a Parquet file or directory, a CSV file (local path or pyarrow "
                                    "URI), or demo:ROWS[:SEED]. Bad rows are reported with their row "
                                    "numbers (0-based, header excluded) and kept in rejected.parquet.")
    p.add_argument("source")
    p.add_argument("--name", required=True, help="dataset name under the data root")
    p.add_argument("--target", help="target column (required unless --schema or the demo source gives it)")
    p.add_argument("--schema", help="dataset schema JSON to validate against (default: inferred)")
    p.add_argument("--task", choices=("classification", "regression"), help="target kind (default: inferred)")
    p.add_argument("--group-by", help="rows sharing this column's value land in the same split")
    p.add_argument("--drop", action="append", default=[], metavar="COLUMN", help="ignore a column (repeatable)")
    p.add_argument("--seed", type=int, help="split seed (default: training.split.seed)")
    p.add_argument("--validation-share", type=float, help="expected validation share (default 0.1)")
    p.add_argument("--test-share", type=float, help="expected test share (default 0.2)")
    p.set_defaults(fn=_ingest)
    p = dsub.add_parser("list", help="list datasets and their versions")
    p.set_defaults(fn=_list)
    p = dsub.add_parser("show", help="show a dataset version's manifest (schema, counts, fingerprint)")
    p.add_argument("name")
    p.add_argument("--version", type=int, help="version (default: latest)")
    p.set_defaults(fn=_show)
