"""Builds the ASGI application from settings."""

from __future__ import annotations

import importlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request, Response
from fastapi.responses import PlainTextResponse
from sqlalchemy.orm import Session, sessionmaker
from starlette.types import ASGIApp, Receive, Scope, Send

from cargohold import metrics, web
from cargohold.api.body_limit import ApiBodyLimit
from cargohold.api.errors import install_error_handlers
from cargohold.api.request_policy import ApiRequestPolicy
from cargohold.api.sessions import SessionRefresh
from cargohold.config import Settings
from cargohold.db.base import engine_for, make_session_factory
from cargohold.forwarded import ForwardedHeaders, parse_networks
from cargohold.metrics import MetricsMiddleware
from cargohold.registry.app import RegistryApp, RegistryDispatch
from cargohold.request_log import RequestIdMiddleware
from cargohold.serving import Drain
from cargohold.storage import make_store
from cargohold.workers.runner import WorkerContext, WorkerPool

log = logging.getLogger(__name__)

# Routers in mounting order, which matters only for the last one.
ROUTER_MODULES = [
    "cargohold.api.health",
    "cargohold.api.bootstrap",
    "cargohold.api.messages",
    "cargohold.api.capabilities",
    "cargohold.api.changelog",
    "cargohold.api.superuser",
    "cargohold.api.superuser_extras",
    "cargohold.api.quota",
    "cargohold.api.service_keys",
    "cargohold.api.keyserver",
    "cargohold.api.superuser_builds",
    "cargohold.api.team",
    "cargohold.api.members",
    "cargohold.api.prototype",
    "cargohold.api.user_notification",
    "cargohold.api.error_types",
    "cargohold.api.signin",
    "cargohold.api.user",
    "cargohold.api.user_authorizations",
    "cargohold.api.user_convert",
    "cargohold.api.external_login",
    "cargohold.api.confirm",
    "cargohold.api.recovery",
    "cargohold.api.robot",
    "cargohold.api.federation",
    "cargohold.api.appspecifictokens",
    "cargohold.api.organization",
    "cargohold.api.proxy_cache",
    "cargohold.api.applications",
    "cargohold.api.oauth",
    "cargohold.api.assigned_authorizations",
    "cargohold.api.superuser_users",
    "cargohold.api.tag",
    "cargohold.api.trigger",
    "cargohold.api.build",
    "cargohold.api.build_artifacts",
    "cargohold.api.webhooks",
    "cargohold.api.manifest",
    "cargohold.api.permission",
    "cargohold.api.star",
    "cargohold.api.search",
    "cargohold.api.repositorynotification",
    "cargohold.api.mirror",
    "cargohold.api.tag_policies",
    "cargohold.api.logs",
    "cargohold.api.log_export",
    # Repository names may be nested (`ns/a/b`), so `/repository/ns/repo/logs` is both the logs
    # of `ns/repo` and the repository `ns/repo/logs`; Quay's router prefers the rule with more
    # fixed parts, so the plain repository routes are tried last. Two-part names are never
    # ambiguous: the repopath convertor needs the namespace part.
    "cargohold.api.repository",
]


class _KeepConnectionAfterError:
    """Starlette re-raises an endpoint's exception after its 500 has been sent, and the server
    then drops the connection, failing the client's next request on it. The error handler has
    answered and logged it; stop it here."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        answered = False

        async def tracking_send(message: dict) -> None:
            nonlocal answered
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                answered = True

        try:
            await self.app(scope, receive, tracking_send)
        except Exception:
            if not answered:
                raise


class CargoholdApi(FastAPI):
    def build_middleware_stack(self) -> ASGIApp:
        return _KeepConnectionAfterError(super().build_middleware_stack())


def install_metrics_route(
    app: FastAPI, settings: Settings, session_factory: sessionmaker[Session]
) -> None:
    @app.get("/metrics", include_in_schema=False)
    def prometheus_metrics(request: Request) -> Response:
        client = request.client.host if request.client is not None else None
        if not metrics.client_allowed(client, settings.METRICS_ALLOWED_NETWORKS):
            return PlainTextResponse("metrics are not served to this address\n", status_code=403)
        return Response(metrics.render(session_factory), media_type=metrics.CONTENT_TYPE)


def create_app(
    settings: Settings, *, run_workers: bool = False, drain: Drain | None = None
) -> FastAPI:
    engine = engine_for(settings)
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

    app = CargoholdApi(
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
    app.state.drain = drain or Drain()
    install_error_handlers(app)
    registry = RegistryApp(settings, session_factory, store)
    app.add_middleware(ApiBodyLimit, limit=settings.API_MAX_BODY_BYTES)
    app.state.keys = registry.registry.keys
    app.add_middleware(RegistryDispatch, registry=registry)
    app.add_middleware(ApiRequestPolicy, settings=settings)
    app.add_middleware(SessionRefresh, settings=settings)
    app.add_middleware(MetricsMiddleware)
    app.add_middleware(RequestIdMiddleware)
    # Outermost: everything inside sees the client address and scheme a trusted proxy gave.
    app.add_middleware(ForwardedHeaders, trusted=parse_networks(settings.TRUSTED_PROXIES))
    install_metrics_route(app, settings, session_factory)
    for module_name in ROUTER_MODULES:
        app.include_router(importlib.import_module(module_name).router)
    web.mount(app, settings)
    return app
