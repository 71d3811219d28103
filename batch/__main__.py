"""``python -m batch ARGS``: ``mlgate score ARGS`` as a Ray job entrypoint.

    ray job submit --address http://HEAD:8265 -- python -m batch \\
        --model demo@production --input s3://bucket/rows/ --output s3://bucket/scores/

Under ``ray job submit`` (``RAY_ADDRESS`` set by Ray) it joins the job's cluster;
elsewhere it behaves as ``mlgate score`` (a local Ray unless ``--address``).
"""

from __future__ import annotations

import os
import sys


def main(argv: list[str] | None = None) -> int:
    from mlgate.cli import main as cli_main
    from mlgate.raycluster import loopback_env

    loopback_env()
    if os.environ.get("RAY_ADDRESS"):  # a Ray job's driver: join that cluster, as the job API expects
        import ray

        ray.init(log_to_driver=False)
    return cli_main(["score", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    from mlgate.cli import exit_promptly

    exit_promptly(main())
