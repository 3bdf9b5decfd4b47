"""Health endpoints for load balancers, as Quay has them."""

from __future__ import annotations

import logging
import shutil
import tempfile
from pathlib import Path

from fastapi import Request
from fastapi.responses import JSONResponse, PlainTextResponse

from cargohold.api.routing import ApiRouter
from cargohold.domain.health import check_database
from cargohold.storage.base import StorageError

log = logging.getLogger(__name__)
router = ApiRouter(tags=["health"])


def _database_ok(request: Request) -> bool:
    try:
        with request.app.state.session_factory() as session:
            check_database(session)
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


@router.get("/_internal_ping", operation_id="internalPing")
def internal_ping() -> PlainTextResponse:
    """Liveness: the process answers, whatever its dependencies do."""
    return PlainTextResponse("true")


@router.get("/health", operation_id="health")
@router.get("/health/instance", operation_id="healthInstance")
def health_instance(request: Request) -> JSONResponse:
    """This process answers and reaches its database, and is not draining for a shutdown."""
    serving = not request.app.state.drain.is_set()
    return _report({"database": _database_ok(request), "web_gunicorn": serving})


@router.get("/status", operation_id="status")
@router.get("/health/endtoend", operation_id="healthEndToEnd")
def health_end_to_end(request: Request) -> JSONResponse:
    """The database answers and storage can be written and read back."""
    return _report({"database": _database_ok(request), "storage": _storage_ok(request)})


def _free_share(path: Path) -> float:
    usage = shutil.disk_usage(path)
    return usage.free / usage.total if usage.total else 0.0


def _disk_space_ok(request: Request) -> bool:
    """Free space on the data folder and the temp folder stays above the warning threshold."""
    settings = request.app.state.settings
    threshold = settings.DISKSPACE_HEALTH_WARNING_THRESHOLD
    folders = [Path(settings.DATA_DIR), Path(tempfile.gettempdir())]
    for folder in folders:
        try:
            free = _free_share(folder)
        except OSError:
            log.exception("health check: cannot measure free space on %s", folder)
            return False
        if free < threshold:
            log.warning("health check: %.1f%% free on %s", free * 100, folder)
            return False
    return True


@router.get("/health/warning", operation_id="healthWarning")
def health_warning(request: Request) -> JSONResponse:
    """Conditions worth a warning before they become failures (Quay: disk space)."""
    return _report({"disk_space_warning": _disk_space_ok(request)})
