"""Build artefacts outside /api/v1, as Quay serves them: a build's log (/buildlogs), its
archived log (/logarchive) and the build-status badge of a repository.

cargohold keeps build logs in the database for good instead of moving them to an archive
file, so /buildlogs always answers with the log itself and /logarchive serves a finished
build's log in the archive's shape.
"""

from __future__ import annotations

import hmac
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse, Response

from cargohold.api.badge import badge_svg
from cargohold.api.deps import AuthDep, DbDep, SettingsDep
from cargohold.api.errors import FORBIDDEN_TEXT, NOT_FOUND_TEXT, MessageError
from cargohold.api.routing import ApiRouter
from cargohold.api.superuser_access import require_feature
from cargohold.auth.context import AuthContext
from cargohold.config import Settings
from cargohold.db.models.builds import RepositoryBuild
from cargohold.db.session import DbSession
from cargohold.domain import builds, permissions, repositories

router = ApiRouter(tags=["build"])


def _forbidden() -> MessageError:
    return MessageError(403, FORBIDDEN_TEXT)


def _may_read_logs(
    db: DbSession, auth: AuthContext, settings: Settings, build: RepositoryBuild
) -> bool:
    """Writers read build logs; readers too with FEATURE_READER_BUILD_LOGS (Quay's rule)."""
    repo = build.repository
    if repo.deleted or repo.namespace_user.deleted:
        return False
    if auth.is_global_readonly_superuser or permissions.can_write_repository(db, auth, repo):
        return True
    return settings.FEATURE_READER_BUILD_LOGS and permissions.can_read_repository(db, auth, repo)


def _readable_build(
    db: DbSession, auth: AuthContext, settings: Settings, build_uuid: str
) -> RepositoryBuild:
    """Unknown builds and builds the caller may not read look the same: 403."""
    require_feature(settings.FEATURE_BUILD_SUPPORT)
    build = builds.find_build(db, build_uuid)
    if build is None or not _may_read_logs(db, auth, settings, build):
        raise _forbidden()
    return build


@router.get("/buildlogs/{build_uuid}", operation_id="downloadBuildLogs")
def download_build_logs(
    build_uuid: str, db: DbDep, auth: AuthDep, settings: SettingsDep
) -> JSONResponse:
    """The whole log of a build, as a JSON file download."""
    build = _readable_build(db, auth, settings, build_uuid)
    _, entries = builds.read_logs(db, build.id, 0)
    return JSONResponse(
        {"logs": entries},
        headers={"Content-Disposition": f"attachment;filename={build.uuid}.json"},
    )


def archived_log(db: DbSession, build: RepositoryBuild) -> dict[str, Any] | None:
    """The archive document of a finished build's log; None while the build still runs."""
    if build.phase not in builds.TERMINAL_PHASES:
        return None
    total, entries = builds.read_logs(db, build.id, 0)
    return {"start": 0, "total": total, "logs": entries}


@router.get("/logarchive/{build_uuid}", operation_id="downloadArchivedBuildLogs")
def download_archived_logs(
    build_uuid: str, db: DbDep, auth: AuthDep, settings: SettingsDep
) -> JSONResponse:
    build = _readable_build(db, auth, settings, build_uuid)
    document = archived_log(db, build)
    if document is None:
        raise _forbidden()
    return JSONResponse(document)


def _badge_token_matches(presented: str | None, expected: str) -> bool:
    return presented is not None and hmac.compare_digest(presented.encode(), expected.encode())


@router.get("/repository/{repository:repopath}/status", operation_id="getBuildStatusBadge")
def build_status_badge(
    repository: str, request: Request, db: DbDep, settings: SettingsDep
) -> Response:
    """The last build's state as an SVG badge. A private repository's badge needs its
    badge token (`?token=`, the repository's `status_token`); otherwise it is not found."""
    split = repositories.split_repository_path(repository)
    repo = repositories.find_repository(db, *split) if split else None
    if repo is None or repo.kind != "image":
        raise MessageError(404, NOT_FOUND_TEXT)
    if not repo.public and not _badge_token_matches(
        request.query_params.get("token"), repo.badge_token
    ):
        raise MessageError(404, NOT_FOUND_TEXT)
    state = builds.badge_status(builds.latest_build(db, repo))
    headers = {"Cache-Control": "no-cache", "ETag": state}
    if request.headers.get("if-none-match") == state:
        return Response(status_code=304, headers=headers)
    return Response(badge_svg(state), media_type="image/svg+xml", headers=headers)
