"""Audit log exports: queue one for a repository, an organization or the caller's namespace,
and download the file at the link the export's e-mail or callback carries."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

from cargohold.api.deps import Caller, CallerDep, DbDep, JsonBody, validate_body
from cargohold.api.errors import NOT_FOUND_TEXT, MessageError
from cargohold.api.logs import administered_namespace, log_window, user_admin
from cargohold.api.repo_access import require_repository
from cargohold.api.routing import ApiRouter, json_body_schema
from cargohold.config import Settings
from cargohold.db.models.accounts import User
from cargohold.db.models.registry import Repository, Role
from cargohold.domain import log_export

router = ApiRouter(tags=["logs"])


class ExportLogsBody(BaseModel):
    """Where to announce the finished export."""

    callback_url: str | None = None
    callback_email: str | None = None


BODY = json_body_schema(ExportLogsBody)


def _require_feature(settings: Settings) -> None:
    if not settings.FEATURE_LOG_EXPORT:
        raise MessageError(404, NOT_FOUND_TEXT)


def _export(
    request: Request,
    call: Caller,
    raw: dict[str, Any],
    namespace: User,
    repository: Repository | None = None,
) -> dict[str, str]:
    """Queue the export and log the attempt (`export_logs_success` / `_failure`), as Quay."""
    body = validate_body(ExportLogsBody, raw)
    outcome = log_export.request_export(
        call.db,
        call.settings,
        namespace=namespace,
        repository=repository,
        window=log_window(request),
        callback_url=body.callback_url,
        callback_email=body.callback_email,
        auth=call.auth,
        ip=call.ip,
    )
    call.db.commit()
    if outcome.refusal is not None:
        raise outcome.refusal
    return {"export_id": outcome.export_id}


@router.post(
    "/api/v1/repository/{repository:repopath}/exportlogs",
    operation_id="exportRepoLogs",
    openapi_extra=BODY,
)
def export_repository_logs(
    repository: str, request: Request, call: CallerDep, raw: JsonBody
) -> dict[str, str]:
    _require_feature(call.settings)
    repo = require_repository(call.db, call.auth, repository, Role.admin)
    return _export(request, call, raw, repo.namespace_user, repo)


@router.post("/api/v1/user/exportlogs", operation_id="exportUserLogs", openapi_extra=BODY)
def export_user_logs(request: Request, call: CallerDep, raw: JsonBody) -> dict[str, str]:
    _require_feature(call.settings)
    return _export(request, call, raw, user_admin(call.auth))


@router.post(
    "/api/v1/organization/{orgname}/exportlogs", operation_id="exportOrgLogs", openapi_extra=BODY
)
def export_organization_logs(
    orgname: str, request: Request, call: CallerDep, raw: JsonBody
) -> dict[str, str]:
    _require_feature(call.settings)
    namespace = administered_namespace(call.db, call.auth, orgname, superuser_read=False)
    return _export(request, call, raw, namespace)


@router.get("/exportedlogs/{file_id}", include_in_schema=False)
def download_exported_logs(file_id: str, request: Request, db: DbDep) -> StreamingResponse:
    """The export file; the unguessable id is the credential, and it expires."""
    record = log_export.find_file(db, file_id)
    if record is None or record.digest is None:
        raise MessageError(404, NOT_FOUND_TEXT)
    store = request.app.state.store
    headers = {"Content-Disposition": f"attachment;filename={record.export_id}.json"}
    if record.size is not None:
        headers["Content-Length"] = str(record.size)
    return StreamingResponse(
        store.read_blob(record.digest), media_type="application/json", headers=headers
    )
