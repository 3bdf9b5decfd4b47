"""Builds the ASGI application from settings."""

from __future__ import annotations

import importlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from cargohold import web
from cargohold.api.errors import install_error_handlers
from cargohold.api.request_policy import ApiRequestPolicy
from cargohold.auth.sessions import SessionRefresh
from cargohold.config import Settings
from cargohold.db.base import make_engine, make_session_factory
from cargohold.registry.app import RegistryApp, RegistryDispatch
from cargohold.storage import make_store
from cargohold.workers.runner import WorkerContext, WorkerPool

log = logging.getLogger(__name__)

# Routers in mounting order. Routes with a catch-all repository path come last.
ROUTER_MODULES = [
    "cargohold.api.health",
    "cargohold.api.bootstrap",
    "cargohold.api.messages",
    "cargohold.api.capabilities",
    "cargohold.api.changelog",
    "cargohold.api.superuser",
    "cargohold.api.quota",
    "cargohold.api.service_keys",
    "cargohold.api.keyserver",
    "cargohold.api.superuser_builds",
    "cargohold.api.team",
    "cargohold.api.members",
    "cargohold.api.prototype",
    "cargohold.api.user_notification",
    "cargohold.api.user_authorizations",
    "cargohold.api.error_types",
    "cargohold.api.signin",
    "cargohold.api.user",
    "cargohold.api.confirm",
    "cargohold.api.robot",
    "cargohold.api.federation",
    "cargohold.api.appspecifictokens",
    "cargohold.api.organization",
    "cargohold.api.applications",
    "cargohold.api.oauth",
    "cargohold.api.assigned_authorizations",
    "cargohold.api.superuser_users",
    "cargohold.api.tag",
    "cargohold.api.trigger",
    "cargohold.api.build",
    "cargohold.api.webhooks",
    "cargohold.api.manifest",
    "cargohold.api.permission",
    "cargohold.api.star",
    "cargohold.api.search",
    "cargohold.api.repositorynotification",
    "cargohold.api.mirror",
    # Late, because /repository/{repository:path}/logs also matches longer .../logs paths.
    "cargohold.api.logs",
    "cargohold.api.repository",
]


def create_app(settings: Settings, *, run_workers: bool = False) -> FastAPI:
    engine = make_engine(settings.DB_URI, settings.DB_CONNECTION_ARGS)
    session_factory = make_session_factory(engine)
    store = make_store(settings)
    worker_context = WorkerContext(settings, session_factory, store)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        pool = WorkerPool(worker_context) if run_workers and settings.WORKERS_ENABLED else None
        if pool is not None:
            pool.start()
        yield
        if pool is not None:
            pool.stop()
        registry.close()
        engine.dispose()

    app = FastAPI(
        title=settings.REGISTRY_TITLE,
        version="1",
        openapi_url="/api/v1/discovery",
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
        redirect_slashes=False,
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.session_factory = session_factory
    app.state.store = store
    app.state.worker_context = worker_context
    install_error_handlers(app)
    registry = RegistryApp(settings, session_factory, store)
    app.state.keys = registry.registry.keys
    app.add_middleware(RegistryDispatch, registry=registry)
    app.add_middleware(ApiRequestPolicy, settings=settings)
    app.add_middleware(SessionRefresh, settings=settings)
    for module_name in ROUTER_MODULES:
        app.include_router(importlib.import_module(module_name).router)
    web.mount(app, settings)
    return app
