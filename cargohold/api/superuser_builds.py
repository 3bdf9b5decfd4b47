"""Superuser views of any build by uuid, without naming its repository.

Mounted after the other superuser modules: `/superuser/{build_uuid}/...` would otherwise
shadow their fixed paths.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request

from cargohold.api.build import build_view, int_query, logs_body
from cargohold.api.build_artifacts import archived_log
from cargohold.api.deps import AuthDep, DbDep, SettingsDep, require_fresh_login
from cargohold.api.errors import ApiError, not_found
from cargohold.api.routing import ApiRouter
from cargohold.api.superuser_access import require_superuser_feature, require_superuser_reader
from cargohold.auth.context import AuthContext
from cargohold.config import Settings
from cargohold.db.models.builds import RepositoryBuild
from cargohold.db.session import DbSession
from cargohold.domain import builds as build_rules

router = ApiRouter(tags=["superuser"])


def _authorize(auth: AuthContext, settings: Settings) -> None:
    require_superuser_feature(settings)
    require_fresh_login(auth, settings)
    require_superuser_reader(auth)


def _build(db: DbSession, build_uuid: str) -> RepositoryBuild:
    """Unknown builds are a 400 invalid_response on /status and /logs, as in Quay."""
    build = build_rules.find_build(db, build_uuid)
    if build is None:
        raise ApiError(400, "invalid_response", f"Unable to locate a build by id: {build_uuid}")
    return build


def _view(db: DbSession, settings: Settings, auth: AuthContext, build: RepositoryBuild) -> Any:
    phases = build_rules.effective_phases(db, [build])
    return build_view(db, settings, auth, build, phases[build.id], superuser_variant=True)


@router.get("/api/v1/superuser/{build_uuid}/build", operation_id="getRepoBuildSuperUser")
def get_build(build_uuid: str, db: DbDep, auth: AuthDep, settings: SettingsDep) -> Any:
    _authorize(auth, settings)
    build = build_rules.find_build(db, build_uuid)
    if build is None:
        raise not_found()
    return _view(db, settings, auth, build)


@router.get("/api/v1/superuser/{build_uuid}/status", operation_id="getRepoBuildStatusSuperUser")
def get_build_status(build_uuid: str, db: DbDep, auth: AuthDep, settings: SettingsDep) -> Any:
    _authorize(auth, settings)
    return _view(db, settings, auth, _build(db, build_uuid))


@router.get("/api/v1/superuser/{build_uuid}/logs", operation_id="getRepoBuildLogsSuperUser")
def get_build_logs(
    build_uuid: str, request: Request, db: DbDep, auth: AuthDep, settings: SettingsDep
) -> Any:
    _authorize(auth, settings)
    start = int_query(request, "start", 0, "Start index for the logs") or 0
    return logs_body(db, _build(db, build_uuid), start)


@router.get(
    "/api/v1/superuser/{build_uuid}/logs/archive",
    operation_id="getRepoBuildLogsArchiveSuperUser",
)
def get_build_logs_archive(build_uuid: str, db: DbDep, auth: AuthDep, settings: SettingsDep) -> Any:
    """A finished build's archived log, for superusers who are not members of its repository."""
    _authorize(auth, settings)
    document = archived_log(db, _build(db, build_uuid))
    if document is None:
        raise ApiError(400, "invalid_response", "Archived logs not available")
    return document
