"""Many models per replica, and Triton's model repository API, over the live model table.

With ``serving.max_loaded_models`` a replica holds at most that many models: one not held
is loaded on its first request (concurrent callers wait on one load, each within its own
deadline) after the least recently used one is unloaded (it drains first). An admin's
unload holds until the admin loads the model again; neither a reload nor a request
brings it back.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from contracts.errors import DeadlineExceeded, NotFound, RegistryError
from registry.traffic import TrafficBook
from serving.selection import Selection, model_names, select

if TYPE_CHECKING:
    from serving.live import LiveModels

log = logging.getLogger("mlgate.serving.live")


class Repository:
    """On-demand loads, room-making and the repository API of one replica's table."""

    def __init__(self, live: LiveModels) -> None:
        self.live = live

    async def ensure(self, name: str, within_s: float | None) -> None:
        """Load ``name`` now if it is not held (concurrent callers wait on one load); gives
        up waiting after ``within_s`` (504), the load going on. A model the registry lacks,
        or one an admin unloaded, stays absent."""
        if name in self.live.plane.models or name in self.live.held_out:
            return
        task = self.live._loading.get(name)
        if task is None:
            task = self.live._loading[name] = asyncio.get_running_loop().create_task(self._load_model(name))
            task.add_done_callback(lambda _, name=name: self.live._loading.pop(name, None))
        try:
            await asyncio.wait_for(asyncio.shield(task), within_s)
        except TimeoutError:
            raise DeadlineExceeded(f"model {name} is being loaded; not ready within the request's deadline") from None

    async def _load_model(self, name: str) -> bool | None:
        """Load ``name`` as the registry offers it now, unloading the least recently used
        model first when the replica holds ``max_loaded_models``; True when it is held,
        None when the registry (or ``serving.serve_models``) lacks it."""
        selection = await asyncio.to_thread(self._offer, name)
        if selection is None:
            return None
        if selection.primary is None:
            return False
        cap = self.live.cfg.max_loaded_models
        if cap is not None:
            self._make_room(keep=name, hold_at_most=cap - 1)  # room for this one before it loads
        changed = await self.live._sync_model(name, selection)
        if cap is not None:  # another model's load, begun meanwhile, may have taken the room: the cap holds
            self._make_room(keep=name, hold_at_most=cap)
        if changed:
            self.live._publish_state()
        self.live.plane.touch(name)
        return name in self.live.plane.models

    def _offer(self, name: str) -> Selection | None:
        if name not in model_names(self.live.registry, self.live.cfg):
            return None
        return select(self.live.registry, self.live.cfg, TrafficBook(self.live.registry), name)

    def _make_room(self, keep: str, hold_at_most: int) -> None:
        """Unload the least recently used models but ``keep`` until at most ``hold_at_most`` are held."""
        cap = self.live.cfg.max_loaded_models
        while len(self.live.plane.models) > hold_at_most:
            # never one whose own load is finishing: its callers are about to use it (it makes room itself)
            held = [n for n in self.live.plane.models if n != keep and n not in self.live._loading]
            if not held:
                return
            victim = min(held, key=lambda n: self.live.plane.used.get(n, 0))
            log.info("model %s unloaded to make room for %s (serving.max_loaded_models %d, least recently used)",
                     victim, keep, cap)
            self.live._switch(victim, {}, None, None)

    async def load(self, name: str) -> None:
        """An admin's explicit load (Triton's repository API): held from now on, as the
        registry offers it. NotFound for a model the registry lacks; RegistryError when its
        primary version cannot be loaded (with the reason)."""
        self.live.held_out.discard(name)
        self.live.failures = {k: f for k, f in self.live.failures.items() if k[0] != name}  # try again now
        if name in self.live.plane.models:
            return
        held = await self._load_model(name)
        if held is None:
            raise NotFound(f"unknown model {name!r}")
        if not held:
            raise RegistryError(f"model {name} could not be loaded: {self._why_failed(name) or 'no version'}")

    def unload(self, name: str) -> None:
        """An admin's explicit unload: its versions drain and are unloaded, and it is not
        loaded again (by a reload or a request) until :meth:`load`."""
        if name not in self.live.plane.models and name not in self.live.available:
            raise NotFound(f"unknown model {name!r}")
        self.live.held_out.add(name)
        if name in self.live.plane.models:
            self.live._switch(name, {}, None, None)
            self.live._publish_state()

    def index(self) -> list[dict]:
        """Triton's repository index: every model the registry offers or the replica holds,
        with its state (READY, LOADING, UNAVAILABLE) and why."""
        out = []
        for name in sorted(set(self.live.available) | set(self.live.plane.models)):
            versions = self.live.plane.models.get(name)
            if versions:
                out += [{"name": name, "version": str(v), "state": "READY", "reason": ""} for v in sorted(versions)]
                continue
            reason = ("unloaded by an admin" if name in self.live.held_out else "loading" if name in self.live._loading
                      else self._why_failed(name) or "not loaded (loaded on its first request)")
            state = "LOADING" if name in self.live._loading else "UNAVAILABLE"
            out.append({"name": name, "version": "", "state": state, "reason": reason})
        return out

    def _why_failed(self, name: str) -> str:
        """Why ``name``'s versions failed to load ("" when none did)."""
        return "; ".join(f"version {v}: {f.error}" for (m, v), f in sorted(self.live.failures.items()) if m == name)
