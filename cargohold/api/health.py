"""Health endpoints for load balancers, as Quay has them."""

from __future__ import annotations

import logging

from fastapi import Request
from fastapi.responses import JSONResponse
from sqlalchemy import text

from cargohold.api.routing import ApiRouter
from cargohold.storage.base import StorageError

log = logging.getLogger(__name__)
router = ApiRouter(tags=["health"])


def _database_ok(request: Request) -> bool:
    try:
        with request.app.state.session_factory() as session:
            session.execute(text("SELECT 1"))
        return True
    except Exception:
        log.exception("health check: database unreachable")
        return False


def _storage_ok(request: Request) -> bool:
    try:
        request.app.state.store.check()
        return True
    except StorageError:
        log.exception("health check: storage unusable")
        return False


def _report(services: dict[str, bool]) -> JSONResponse:
    healthy = all(services.values())
    status = 200 if healthy else 503
    body = {"data": {"services": services}, "status_code": status}
    return JSONResponse(body, status_code=status)


@router.get("/health/instance", operation_id="healthInstance")
def health_instance(request: Request) -> JSONResponse:
    """This process answers and reaches its database."""
    return _report({"database": _database_ok(request), "web_gunicorn": True})


@router.get("/health/endtoend", operation_id="healthEndToEnd")
def health_end_to_end(request: Request) -> JSONResponse:
    """The database answers and storage can be written and read back."""
    return _report({"database": _database_ok(request), "storage": _storage_ok(request)})
