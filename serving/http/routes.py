"""Route matching for the v2 and plain JSON paths (no regex on the hot path)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache


@dataclass(frozen=True)
class Route:
    kind: str  # server_meta, live, ready, model_meta, model_ready, model_config, infer, predict, metrics, feedback,
    # repo_index, repo_load, repo_unload (Triton's model repository extension)
    model: str | None = None
    version: str | None = None


_SERVER = {"/v2": "server_meta", "/v2/": "server_meta", "/v2/health/live": "live",
           "/v2/health/ready": "ready", "/metrics": "metrics", "/v2/repository/index": "repo_index"}
_REPOSITORY_ACTIONS = {"load": "repo_load", "unload": "repo_unload"}
_MODEL_SUFFIX = {"": "model_meta", "ready": "model_ready", "infer": "infer", "feedback": "feedback",
                 "config": "model_config"}


@lru_cache(maxsize=4096)
def match(path: str) -> Route | None:
    kind = _SERVER.get(path)
    if kind:
        return Route(kind)
    if path.startswith("/v2/models/"):
        return _v2_model(path[len("/v2/models/"):].split("/"))
    if path.startswith("/v2/repository/models/"):
        parts = path[len("/v2/repository/models/"):].split("/")
        kind = _REPOSITORY_ACTIONS.get(parts[-1]) if len(parts) == 2 and parts[0] else None
        return Route(kind, parts[0]) if kind else None
    if path.startswith("/v1/models/") and path.endswith(":predict"):
        parts = path[len("/v1/models/"):-len(":predict")].split("/")
        if len(parts) == 1 and parts[0]:
            return Route("predict", parts[0])
        if len(parts) == 3 and parts[1] == "versions" and parts[0] and parts[2]:
            return Route("predict", parts[0], parts[2])
    return None


def _v2_model(parts: list[str]) -> Route | None:
    if not parts[0]:
        return None
    name, rest = parts[0], parts[1:]
    version = None
    if len(rest) >= 2 and rest[0] == "versions" and rest[1]:
        version, rest = rest[1], rest[2:]
    if len(rest) > 1:
        return None
    kind = _MODEL_SUFFIX.get(rest[0] if rest else "")
    return Route(kind, name, version) if kind else None
