"""What a replica loads when it starts: the versions it should hold, and when the primary
one cannot be loaded (a damaged file, a model that fails its warm-up), the version that
served before it, so a replica that starts after a bad promotion still answers.

Fallback order: the earlier production versions, newest first, then every other version,
newest first. Each failure is kept (``plane.load_failures``) for the live table to report
and to retry later.
"""

from __future__ import annotations

import logging

from registry.store import Registry
from serving.config import ServingConfig
from serving.model import ServedModel
from serving.selection import Selection

log = logging.getLogger("mlgate.serving")


def load_model(plane, registry: Registry, cfg: ServingConfig, name: str, selection: Selection) -> None:
    """Install ``name`` on ``plane`` as ``selection`` says, or around a primary that fails."""
    mcfg = cfg.for_model(name)
    loaded: dict[int, ServedModel] = {}
    for mv in selection.versions:
        model = _try(plane, name, mv.version, lambda mv=mv: ServedModel(mv, mcfg, plane))
        if model is not None:
            loaded[mv.version] = model
    primary = selection.primary
    if primary not in loaded:
        primary = None
        for version in fallbacks(registry, name, exclude={v for (m, v) in plane.load_failures if m == name}):
            model = loaded.get(version) or _try(plane, name, version,
                                                lambda v=version: ServedModel(registry.get(name, v), mcfg, plane))
            if model is not None:
                loaded[version], primary = model, version
                log.error("model %s: version %s (what its policy wants) cannot be loaded; serving version %s "
                          "instead until it can", name, selection.primary, version)
                break
    if primary is None:
        log.error("model %s: no version could be loaded; it is not served", name)
        return
    plane.install(name, loaded, primary, selection.policy)
    log.info("loaded model %s versions %s (primary %s)", name, sorted(loaded), primary)


def fallbacks(registry: Registry, name: str, exclude: set[int]) -> list[int]:
    """Earlier production versions (newest first), then the other versions (newest first)."""
    earlier = list(reversed(registry.stages.state(name).production_history))
    rest = sorted(registry.list_versions(name), reverse=True)
    order = [v for v in dict.fromkeys(earlier + rest) if v not in exclude]
    return order


def _try(plane, name: str, version: int, load):
    try:
        return load()
    except Exception as exc:  # noqa: BLE001 - whatever breaks a version keeps it out of traffic
        plane.load_failures[(name, version)] = f"{type(exc).__name__}: {exc}"
        log.exception("model %s version %s failed to load or warm up at replica start", name, version)
        return None
