"""The admin API as a FastAPI application (OpenAPI at ``/openapi.json``, docs at ``/docs``).

``create_app(settings)`` builds one; the Serve deployment (:mod:`control.deployment`) and
the tests serve it. Only ``/v1/health`` is open; everything else needs the ``admin`` scope.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from contracts.clock import Clock, wall_clock_s
from control import errors, policy_routes, rollout_routes, routes
from control.context import AdminContext, AdminSettings
from control.schemas import Health

TITLE = "mlgate admin API"
VERSION = "1"


def create_app(settings: AdminSettings, clock: Clock = wall_clock_s) -> FastAPI:
    """The application over ``settings`` (the audit trail is opened here: ConfigError when it
    cannot be written)."""
    ctx = AdminContext.build(settings, clock)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        ctx.close()

    app = FastAPI(title=TITLE, version=VERSION, lifespan=lifespan,
                  description="Models, stages, traffic policy, rollouts and the audit trail of an mlgate registry. "
                  "Every route but /v1/health needs 'Authorization: Bearer' with the admin scope; "
                  "every write, and every refused write, is a record in the audit trail.")
    app.state.admin = ctx
    errors.install(app)
    app.include_router(routes.router)
    app.include_router(rollout_routes.router)
    app.include_router(policy_routes.router)

    @app.get("/v1/health", response_model=Health, tags=["health"])
    def health() -> Health:
        """Open: the admin API answers."""
        return Health()

    return app
