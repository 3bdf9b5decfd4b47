"""Builds the ASGI application from settings."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request, Response
from fastapi.responses import PlainTextResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from cargohold import metrics, web
from cargohold.api import (
    applications,
    appspecifictokens,
    assigned_authorizations,
    bootstrap,
    build,
    build_artifacts,
    capabilities,
    changelog,
    confirm,
    error_types,
    external_login,
    federation,
    health,
    keyserver,
    log_export,
    logs,
    manifest,
    members,
    messages,
    mirror,
    oauth,
    organization,
    permission,
    prototype,
    proxy_cache,
    quota,
    recovery,
    repository,
    repositorynotification,
    robot,
    search,
    service_keys,
    signin,
    star,
    superuser,
    superuser_builds,
    superuser_extras,
    superuser_users,
    tag,
    tag_policies,
    team,
    trigger,
    user,
    user_authorizations,
    user_convert,
    user_notification,
    webhooks,
)
from cargohold.api.body_limit import ApiBodyLimit
from cargohold.api.errors import install_error_handlers
from cargohold.api.request_policy import ApiRequestPolicy
from cargohold.api.sessions import SessionRefresh
from cargohold.config import Settings
from cargohold.db.base import engine_for, make_session_factory
from cargohold.db.session import SessionFactory
from cargohold.forwarded import TrustedProxies, parse_networks
from cargohold.front import Front
from cargohold.metrics import MetricsMiddleware
from cargohold.registry.app import RegistryApp
from cargohold.request_log import RequestIdMiddleware
from cargohold.serving import Drain
from cargohold.storage import make_store
from cargohold.thread_pool import LifoThreadPool
from cargohold.workers.runner import WorkerContext, WorkerPool

log = logging.getLogger(__name__)

# Routers in mounting order, which matters only for the last one.
ROUTERS = [
    health,
    bootstrap,
    messages,
    capabilities,
    changelog,
    superuser,
    superuser_extras,
    quota,
    service_keys,
    keyserver,
    superuser_builds,
    team,
    members,
    prototype,
    user_notification,
    error_types,
    signin,
    user,
    user_authorizations,
    user_convert,
    external_login,
    confirm,
    recovery,
    robot,
    federation,
    appspecifictokens,
    organization,
    proxy_cache,
    applications,
    oauth,
    assigned_authorizations,
    superuser_users,
    tag,
    trigger,
    build,
    build_artifacts,
    webhooks,
    manifest,
    permission,
    star,
    search,
    repositorynotification,
    mirror,
    tag_policies,
    logs,
    log_export,
    # Repository names may be nested (`ns/a/b`), so `/repository/ns/repo/logs` is both the logs
    # of `ns/repo` and the repository `ns/repo/logs`; Quay's router prefers the rule with more
    # fixed parts, so the plain repository routes are tried last. Two-part names are never
    # ambiguous: the repopath convertor needs the namespace part.
    repository,
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
    # Set by create_app before the first request builds the stack.
    registry: RegistryApp
    proxies: TrustedProxies

    def build_middleware_stack(self) -> ASGIApp:
        api = _KeepConnectionAfterError(super().build_middleware_stack())
        return Front(api, self.registry, self.proxies)


def install_metrics_route(
    app: FastAPI, settings: Settings, session_factory: SessionFactory
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
        # The loop's own executor moves file bodies (cargohold.zero_copy): it too should
        # keep a light load on its warm threads after a burst.
        asyncio.get_running_loop().set_default_executor(
            LifoThreadPool(
                max_workers=min(32, (os.cpu_count() or 1) + 4), thread_name_prefix="loop"
            )
        )
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
    app.registry = registry
    app.state.keys = registry.registry.keys
    app.proxies = TrustedProxies(parse_networks(settings.TRUSTED_PROXIES))
    # For everything but /v2, which cargohold.front sends to the registry before these.
    app.add_middleware(ApiBodyLimit, limit=settings.API_MAX_BODY_BYTES)
    app.add_middleware(ApiRequestPolicy, settings=settings)
    app.add_middleware(SessionRefresh, settings=settings)
    app.add_middleware(MetricsMiddleware)
    app.add_middleware(RequestIdMiddleware)
    install_metrics_route(app, settings, session_factory)
    for module in ROUTERS:
        # The routers' own routes, not include_router: FastAPI would build every included
        # route a second time, at the first request through it (about a second, and memory).
        app.router.routes.extend(module.router.routes)
    web.mount(app, settings)
    return app
