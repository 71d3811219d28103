"""Triton's model repository extension on the gateway (admin only): the index of models
with their states, and explicit load and unload, answered by the replica's live table.

A replica answers for itself: behind the shared port a call reaches one replica. A load
or unload meant for all of them goes through the registry (stages, traffic policy) or
the admin API, which every replica follows.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import orjson

from access.identity import OPEN
from contracts.errors import MlgateError
from serving.http.errors import JSON, Response
from serving.http.routes import Route
from serving.multiplex import Repository
from serving.protocol.json_data import json_object

ACTIONS = {"repo_load": "repository.load", "repo_unload": "repository.unload"}  # audit trail action names


class RepositoryHandlers:
    def __init__(self, repository: Repository, audit=None, replica: str = "") -> None:
        """``audit``: an ``access.audit.AuditLog`` every load and unload (and every refused
        attempt) is recorded in, naming ``replica``; None: not recorded."""
        self.repository = repository
        self.audit = audit
        self.replica = replica

    def handlers(self) -> dict:
        return {"repo_index": self.index, "repo_load": self.load, "repo_unload": self.unload}

    async def index(self, route: Route, headers: dict, body: bytes, identity) -> Response:
        ready_only = bool(_body(body).get("ready", False))
        models = [m for m in self.repository.index() if not ready_only or m["state"] == "READY"]
        return 200, [JSON], orjson.dumps(models)

    async def load(self, route: Route, headers: dict, body: bytes, identity) -> Response:
        async with self._audited(route, identity):
            _body(body)
            await self.repository.load(route.model)
        return 200, [JSON], b"{}"

    async def unload(self, route: Route, headers: dict, body: bytes, identity) -> Response:
        async with self._audited(route, identity):
            _body(body)
            self.repository.unload(route.model)
        return 200, [JSON], b"{}"

    async def refused(self, route: Route, error: MlgateError) -> None:
        """An attempt at a load or unload that access control refused."""
        if route.kind in ACTIONS:
            await self._record(None, route, "refused", {"error": error.message})

    @asynccontextmanager
    async def _audited(self, route: Route, identity) -> AsyncIterator[None]:
        try:
            yield
        except MlgateError as exc:
            await self._record(identity, route, "failed", {"error": exc.message})
            raise
        await self._record(identity, route, "ok", {})

    async def _record(self, identity, route: Route, outcome: str, detail: dict) -> None:
        if self.audit is not None:  # a durable append: off the loop
            await asyncio.to_thread(self.audit.append, _who(identity), ACTIONS[route.kind], route.model, outcome,
                                    {**detail, "replica": self.replica})


def _who(identity):
    return None if identity is None or identity is OPEN else identity


def _body(body: bytes) -> dict:
    """The optional JSON object these requests may carry."""
    return json_object(body) if body.strip() else {}
