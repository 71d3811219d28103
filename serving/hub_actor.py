"""The cluster-wide metrics hub as a named Ray actor, and the client replicas use."""

from __future__ import annotations

import asyncio
import logging
import urllib.request

import ray

from contracts.prometheus import HUB_NAME, HUB_NAMESPACE, MetricsHub

log = logging.getLogger("mlgate.metrics")


@ray.remote(num_cpus=0, max_concurrency=16)
class MetricsHubActor(MetricsHub):
    """A :class:`MetricsHub` living in its own actor; survives replica restarts."""


def get_or_create_hub():
    return MetricsHubActor.options(name=HUB_NAME, namespace=HUB_NAMESPACE, get_if_exists=True,
                                   lifetime="detached").remote()


class RayHub:
    """Hub client for a replica: pushes are fire-and-forget actor calls."""

    def __init__(self, actor, include_ray_metrics: bool = True) -> None:
        self.actor = actor
        self._ray_metrics_url = _node_metrics_url() if include_ray_metrics else None

    def push(self, source: str, snap: dict) -> None:
        self.actor.push.remote(source, snap)

    def forget(self, source: str) -> None:
        self.actor.forget.remote(source)

    async def render(self, source: str | None = None, snap: dict | None = None) -> str:
        """The cluster-wide text; with ``snap``, this process's deltas are pushed in the same call."""
        ref = self.actor.render.remote() if snap is None else self.actor.push_and_render.remote(source, snap)
        text = await asyncio.wrap_future(ref.future())
        if self._ray_metrics_url:
            text += await asyncio.to_thread(_ray_serve_lines, self._ray_metrics_url)
        return text


def _node_metrics_url() -> str | None:
    node_id = ray.get_runtime_context().get_node_id()
    for node in ray.nodes():
        if node.get("NodeID") == node_id and node.get("MetricsExportPort"):
            return f"http://{node.get('NodeManagerAddress', '127.0.0.1')}:{node['MetricsExportPort']}/metrics"
    return None


def _ray_serve_lines(url: str) -> str:
    """Ray's own ``ray_serve_*`` series from this node's metrics agent."""
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            body = r.read().decode()
    except OSError as exc:
        log.info("cannot read Ray metrics at %s: %s", url, exc)
        return ""
    keep = []
    for line in body.splitlines():
        name = line.split(" ", 3)[2] if line.startswith("# ") else line
        if name.startswith("ray_serve_"):
            keep.append(line)
    return "\n".join(keep) + ("\n" if keep else "")
