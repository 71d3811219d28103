"""``mlgate score``: batch scoring of Parquet or CSV on Ray Data (flags and flow: ``batch.entry``)."""

from __future__ import annotations

from batch import entry


def register(sub) -> None:
    p = sub.add_parser("score", help="score Parquet or CSV with a registered model (Ray Data, resumable)",
                       description=entry.DESCRIPTION)
    entry.add_arguments(p)
    p.set_defaults(fn=entry.score)
