"""``python -m batch ARGS``: ``mlgate score ARGS`` as a Ray job entrypoint.

    ray job submit --address http://HEAD:8265 -- python -m batch \\
        --model demo@production --input s3://bucket/rows/ --output s3://bucket/scores/

Under ``ray job submit`` (``RAY_ADDRESS`` set by Ray) it joins the job's cluster;
elsewhere it behaves as ``mlgate score`` (a local Ray unless ``--address``). The flags and
the flow are ``batch.entry``'s, shared with ``mlgate score``; the CLI is not imported.
"""

from __future__ import annotations

import argparse
import os
import sys

from contracts.errors import MlgateError


def main(argv: list[str] | None = None) -> int:
    from mlgate.raycluster import loopback_env

    loopback_env()  # before anything imports ray: it reads this at import time
    from batch import entry

    parser = argparse.ArgumentParser(prog="mlgate score", description=entry.DESCRIPTION)  # the same command
    entry.add_arguments(parser)
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    try:
        return entry.score(args, join_job=bool(os.environ.get("RAY_ADDRESS")))
    except MlgateError as exc:
        print(f"mlgate: error: {exc.message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    from mlgate.process import exit_promptly

    exit_promptly(main())
