"""Triton's model repository extension on the gateway (admin only): the index of models
with their states, and explicit load and unload, answered by the replica's live table.

A replica answers for itself: behind the shared port a call reaches one replica. A load
or unload meant for all of them goes through the registry (stages, traffic policy) or
the admin API, which every replica follows.
"""

from __future__ import annotations

import orjson

from contracts.errors import InvalidInput
from serving.http.errors import JSON, Response
from serving.http.routes import Route
from serving.multiplex import Repository


class RepositoryHandlers:
    def __init__(self, repository: Repository) -> None:
        self.repository = repository

    def handlers(self) -> dict:
        return {"repo_index": self.index, "repo_load": self.load, "repo_unload": self.unload}

    async def index(self, route: Route, headers: dict, body: bytes, identity) -> Response:
        ready_only = bool(_body(body).get("ready", False))
        models = [m for m in self.repository.index() if not ready_only or m["state"] == "READY"]
        return 200, [JSON], orjson.dumps(models)

    async def load(self, route: Route, headers: dict, body: bytes, identity) -> Response:
        _body(body)
        await self.repository.load(route.model)
        return 200, [JSON], b"{}"

    async def unload(self, route: Route, headers: dict, body: bytes, identity) -> Response:
        _body(body)
        self.repository.unload(route.model)
        return 200, [JSON], b"{}"


def _body(body: bytes) -> dict:
    """The optional JSON object these requests may carry."""
    if not body.strip():
        return {}
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidInput(f"body: not JSON ({exc})") from None
    if not isinstance(doc, dict):
        raise InvalidInput("body: expected a JSON object")
    return doc
