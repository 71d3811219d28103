"""Which versions a replica should hold, and how it routes among them: each model's version
policy (set at run time in the registry, else ``serving.models``) applied to the registry's
versions and stages now, plus the model's traffic policy (canaries and shadows) from the
registry.

Read by the data plane at replica start and by the live model table at every reload;
both call :func:`wanted`, so a replica starts with exactly what it would later follow.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from contracts.errors import NotFound, RegistryError
from registry.store import ModelVersion, Registry, VersionPolicy
from registry.traffic import TrafficBook, TrafficPolicy
from registry.version_policies import PolicyBook
from serving.config import ServingConfig

log = logging.getLogger("mlgate.serving")


@dataclass(frozen=True)
class Selection:
    """One model's wanted versions (oldest first): ``primary`` answers what no canary takes
    (the newest its version policy admits); the traffic policy's versions come with it."""

    versions: tuple[ModelVersion, ...]
    primary: int | None
    policy: TrafficPolicy

    @property
    def numbers(self) -> tuple[int, ...]:
        return tuple(mv.version for mv in self.versions)


def model_names(registry: Registry, cfg: ServingConfig) -> list[str]:
    """``serving.serve_models``, else every model the registry holds now."""
    return list(cfg.serve_models) if cfg.serve_models is not None else registry.list_models()


def wanted(registry: Registry, cfg: ServingConfig) -> dict[str, Selection]:
    """Per model, what to hold now (a model with no version admitted: no versions, no
    primary). Blocking (registry reads)."""
    book = TrafficBook(registry)
    return {name: select(registry, cfg, book, name) for name in model_names(registry, cfg)}


def version_policy(registry: Registry, cfg: ServingConfig, name: str) -> VersionPolicy:
    """The policy set at run time (``mlgate models policy set``), else the configured one."""
    return PolicyBook(registry).current(name) or cfg.for_model(name).version_policy


def select(registry: Registry, cfg: ServingConfig, book: TrafficBook, name: str) -> Selection:
    by_policy = registry.served(name, version_policy(registry, cfg, name))
    if not by_policy:
        return Selection((), None, TrafficPolicy())
    policy = book.current(name)
    held = {mv.version: mv for mv in by_policy}
    for version in sorted(policy.versions() - held.keys()):
        try:
            held[version] = registry.get(name, version)
        except (NotFound, RegistryError) as exc:  # removed since the policy named it: route around it
            log.warning("model %s: traffic policy names version %s, which cannot be read (%s)", name, version, exc)
    return Selection(tuple(held[v] for v in sorted(held)), by_policy[-1].version, policy)
