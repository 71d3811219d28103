"""``mlgate demo-data``."""

from __future__ import annotations

import argparse


def _demo_data(args: argparse.Namespace) -> int:
    from mlgate.demo import write_demo_data

    path = write_demo_data(args.output, args.rows, seed=args.seed, shift=args.shift)
    print(f"wrote {args.rows} rows to {path}")
    return 0


def register(sub) -> None:
    p = sub.add_parser("demo-data", help="write rows of the demo dataset (Parquet or CSV by extension)")
    p.add_argument("--rows", type=int, required=True, help="number of rows")
    p.add_argument("--output", required=True, help="output file: .parquet or .csv")
    p.add_argument("--shift", type=float, default=0.0, help="drift: move some features by about S std")
    p.add_argument("--seed", type=int, default=1, help="random seed (the demo model trains on seed 0)")
    p.set_defaults(fn=_demo_data)
