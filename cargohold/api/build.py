"""Repository builds: list, request, read, cancel, status and logs; plus the filedrop upload."""

from __future__ import annotations

import datetime as dt
import email.utils
import hashlib
import uuid
from typing import Any
from urllib.parse import urlparse

from fastapi import Request
from fastapi.responses import JSONResponse, StreamingResponse
from itsdangerous import BadSignature, URLSafeTimedSerializer
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from cargohold.api import query
from cargohold.api.deps import (
    AuthDep,
    DbDep,
    JsonBody,
    SettingsDep,
    client_ip,
    validate_body,
)
from cargohold.api.errors import ApiError, MessageError, invalid_request, not_found, unauthorized
from cargohold.api.repo_access import require_normal_state, require_repository
from cargohold.api.routing import ApiRouter
from cargohold.auth.context import AuthContext
from cargohold.config import Settings
from cargohold.db.models.builds import BuildTrigger, RepositoryBuild
from cargohold.db.models.registry import Repository, Role
from cargohold.db.session import DbSession
from cargohold.domain import builds as build_rules
from cargohold.domain import permissions, triggers, user_files
from cargohold.domain.accounts import get_namespace
from cargohold.storage.base import BlobNotFound

router = ApiRouter(tags=["build"])

USERFILE_URL_SECONDS = 300
_USERFILE_SALT = "cargohold-userfile"
SCM_WEB = {
    "github": "https://github.com/",
    "gitlab": "https://gitlab.com/",
    "bitbucket": "https://bitbucket.org/",
}


# --- shared by the build and trigger endpoints -----------------------------------------------


def repository_for(
    db: DbSession,
    auth: AuthContext,
    path: str,
    needed: Role,
    *,
    reading: bool = False,
    missing_ok: bool = False,
) -> Repository | None:
    """`require_repository`, where list endpoints answer a missing repository with None."""
    try:
        return require_repository(db, auth, path, needed, reading=reading)
    except ApiError as exc:
        if missing_ok and exc.status == 404:
            return None
        raise


def admin_or_global_reader(db: DbSession, auth: AuthContext, path: str, **kwargs):
    """Trigger reads: repository admins, and global read-only superusers."""
    return repository_for(
        db, auth, path, Role.admin, reading=auth.is_global_readonly_superuser, **kwargs
    )


def rfc2822(value: dt.datetime) -> str:
    return email.utils.formatdate(value.timestamp(), usegmt=False).replace("+0000", "-0000")


def robot_entity(robot) -> dict[str, Any] | None:
    if robot is None:
        return None
    return {"name": robot.username, "kind": "user", "is_robot": True}


def trigger_view(
    settings: Settings,
    trigger: BuildTrigger,
    *,
    can_read: bool,
    can_admin: bool,
    with_robot: bool,
    with_state: bool = True,
) -> dict[str, Any]:
    config = triggers.full_config(settings, trigger)
    build_source = config.get("build_source") if can_read else None
    repository_url = None
    if build_source and trigger.service in SCM_WEB:
        repository_url = SCM_WEB[trigger.service] + build_source
    view: dict[str, Any] = {
        "id": trigger.uuid,
        "service": trigger.service,
        "is_active": triggers.is_active(trigger),
        "build_source": build_source,
        "repository_url": repository_url,
        "config": config if can_admin else {},
        "can_invoke": can_admin,
    }
    if with_state:
        view["enabled"] = trigger.enabled
        view["disabled_reason"] = trigger.disabled_reason
    if with_robot and trigger.pull_robot is not None:
        view["pull_robot"] = robot_entity(trigger.pull_robot)
    return view


def admin_trigger_view(settings: Settings, trigger: BuildTrigger) -> dict[str, Any]:
    return trigger_view(settings, trigger, can_read=True, can_admin=True, with_robot=True)


def _userfile_serializer(settings: Settings) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(settings.SECRET_KEY, salt=_USERFILE_SALT)


def userfile_url(settings: Settings, file_id: str, *, signed: bool) -> str:
    url = f"{settings.server_url}/userfiles/{file_id}"
    if signed:
        url += "?token=" + _userfile_serializer(settings).dumps(file_id)
    return url


def build_view(
    db: DbSession,
    settings: Settings,
    auth: AuthContext,
    build: RepositoryBuild,
    phase: str,
    *,
    superuser_variant: bool = False,
) -> dict[str, Any]:
    """Quay's build JSON, with what the caller may see of it."""
    repository = build.repository
    readable = permissions.can_read_repository(db, auth, repository)
    writable = permissions.can_write_repository(db, auth, repository)
    admin = permissions.can_admin_repository(db, auth, repository)
    config = build_rules.job_config(build)
    trigger = None
    if build.trigger is not None:
        trigger = trigger_view(
            settings,
            build.trigger,
            can_read=readable,
            can_admin=admin,
            with_robot=False,
            with_state=not superuser_variant,
        )
    view: dict[str, Any] = {
        "id": build.uuid,
        "phase": phase,
        "started": rfc2822(build.started),
        "display_name": build.display_name,
        "status": {},
        "subdirectory": config.get("build_subdir") or "",
        "dockerfile_path": config.get("build_subdir") or "",
        "context": config.get("context") or "",
        "tags": config.get("docker_tags") or [],
        "manual_user": config.get("manual_user"),
        "is_writer": writable,
        "trigger": trigger,
        "trigger_metadata": config.get("trigger_metadata") if readable else None,
        "resource_key": build.resource_key,
        "pull_robot": robot_entity(build.pull_robot),
        "repository": {"namespace": repository.namespace_user.username, "name": repository.name},
        "error": None,
    }
    if writable or settings.FEATURE_READER_BUILD_LOGS:
        if build.resource_key:
            view["archive_url"] = userfile_url(settings, build.resource_key, signed=True)
        elif config.get("archive_url"):
            view["archive_url"] = config["archive_url"]
    return view


def build_views(
    db: DbSession, settings: Settings, auth: AuthContext, items: list[RepositoryBuild]
) -> list[dict[str, Any]]:
    phases = build_rules.effective_phases(db, items)
    return [build_view(db, settings, auth, build, phases[build.id]) for build in items]


def status_location(repository: Repository, build: RepositoryBuild) -> str:
    return f"/api/v1/repository/{repository.full_name}/build/{build.uuid}/status"


def logs_body(db: DbSession, build: RepositoryBuild, start: int) -> dict[str, Any]:
    total, entries = build_rules.read_logs(db, build.id, start)
    return {"start": start, "total": total, "logs": entries}


def created_build(
    db: DbSession,
    settings: Settings,
    auth: AuthContext,
    repository: Repository,
    build: RepositoryBuild,
) -> JSONResponse:
    """Commit a started build and answer 201 with its view and where its status is read."""
    db.commit()
    build = build_rules.find_build(db, build.uuid)
    return JSONResponse(
        build_view(db, settings, auth, build, build.phase),
        status_code=201,
        headers={"Location": status_location(repository, build)},
    )


def int_query(request: Request, name: str, default: int | None, description: str) -> int | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    return query.parse_integer(raw, name, description)


def resolve_pull_robot(db: DbSession, auth: AuthContext, name: str):
    """A robot the caller administers (by its namespace); Quay's 403/404 otherwise."""
    if "+" not in name:
        raise unauthorized(auth)
    robot = build_rules.lookup_robot(db, name)
    if robot is None:
        raise ApiError(404, "not_found", f"Could not find robot with specified username: {name}")
    owner = get_namespace(db, build_rules.robot_namespace_name(name))
    if owner is None or not permissions.can_admin_organization(db, auth, owner):
        raise unauthorized(auth)
    return robot


# --- builds ----------------------------------------------------------------------------------


class BuildRequestBody(BaseModel):
    model_config = ConfigDict(extra="allow")

    file_id: str = Field(default=None)
    archive_url: str = Field(default=None)
    subdirectory: str = Field(default=None)
    dockerfile_path: str = Field(default=None)
    context: str = Field(default=None)
    pull_robot: str = Field(default=None)
    docker_tags: list[str] | None = Field(default=None, min_length=1)


@router.get("/api/v1/repository/{repository:repopath}/build/", operation_id="getRepoBuilds")
def get_repo_builds(
    repository: str, request: Request, db: DbDep, auth: AuthDep, settings: SettingsDep
) -> dict[str, Any]:
    limit = int_query(request, "limit", 5, "The maximum number of builds to return")
    since_help = "Returns all builds since the given unix timecode"
    since = int_query(request, "since", None, since_help)
    since_at = query.unix_time(since, "since", since_help) if since is not None else None
    repo = repository_for(db, auth, repository, Role.read, reading=True, missing_ok=True)
    if repo is None:
        return {"builds": []}
    items = build_rules.list_builds(db, repo, limit=limit, since=since_at)
    return {"builds": build_views(db, settings, auth, items)}


def _check_archive_url(settings: Settings, archive_url: str) -> None:
    try:
        parsed = urlparse(archive_url)
    except ValueError as exc:
        raise invalid_request("Invalid Archive URL: Must be a valid URI") from exc
    if not parsed.scheme or not parsed.netloc:
        if parsed.scheme in ("http", "https"):
            raise invalid_request("Invalid Archive URL: Must be a valid URI")
        raise invalid_request("Invalid Archive URL: Must be http or https")
    if parsed.scheme not in ("http", "https"):
        raise invalid_request("Invalid Archive URL: Must be http or https")
    build_rules.check_archive_url(settings, archive_url)


@router.post(
    "/api/v1/repository/{repository:repopath}/build/",
    operation_id="requestRepoBuild",
    status_code=201,
)
def request_repo_build(
    repository: str,
    request: Request,
    body: JsonBody,
    db: DbDep,
    auth: AuthDep,
    settings: SettingsDep,
) -> JSONResponse:
    repo = repository_for(db, auth, repository, Role.write, missing_ok=True)
    if repo is not None:
        require_normal_state(repo)
    data = validate_body(BuildRequestBody, body)
    if not data.file_id and not data.archive_url:
        raise invalid_request("file_id or archive_url required")
    if data.archive_url:
        _check_archive_url(settings, data.archive_url)
    pull_robot = resolve_pull_robot(db, auth, data.pull_robot) if data.pull_robot else None
    if data.file_id and not user_files.reusable_by(db, auth, data.file_id):
        raise unauthorized(auth)
    if repo is None:
        raise not_found()
    user_file = None
    if data.file_id:
        user_file = user_files.stored(db, data.file_id)
        if user_file is None:
            raise invalid_request(f"File {data.file_id} could not be found or is invalid")
    dockerfile_path, context = build_rules.resolve_dockerfile_and_context(
        data.dockerfile_path, data.context, data.subdirectory
    )
    tags = [build_rules.escape_tag(tag) for tag in (data.docker_tags or ["latest"])]
    if user_file is not None:
        display_name = user_file.digest.partition(":")[2][:7]
    else:
        display_name = build_rules.archive_display_name(data.archive_url or "")
    build = build_rules.start_build(
        db,
        settings,
        build_rules.BuildRequest(
            repository=repo,
            display_name=display_name,
            dockerfile_path=dockerfile_path,
            context=context,
            tags=list(dict.fromkeys(tags)),
            is_manual=True,
            manual_user=auth.user,
            pull_robot=pull_robot,
            resource_key=data.file_id,
            archive_url=None if data.file_id else data.archive_url,
        ),
        auth=auth,
        ip=client_ip(request),
    )
    return created_build(db, settings, auth, repo, build)


def _build_in(db: DbSession, repository: Repository, build_uuid: str) -> RepositoryBuild | None:
    build = build_rules.find_build(db, build_uuid)
    if build is None:
        return None
    if build.repository_id != repository.id:
        raise not_found()
    return build


def _unknown_build(build_uuid: str) -> MessageError:
    return MessageError(400, f"Unable to locate a build by id: {build_uuid}")


@router.get(
    "/api/v1/repository/{repository:repopath}/build/{build_uuid}/status",
    operation_id="getRepoBuildStatus",
)
def get_repo_build_status(
    repository: str, build_uuid: str, db: DbDep, auth: AuthDep, settings: SettingsDep
) -> dict[str, Any]:
    repo = repository_for(db, auth, repository, Role.read, reading=True, missing_ok=True)
    build = _build_in(db, repo, build_uuid) if repo is not None else None
    if build is None:
        raise _unknown_build(build_uuid)
    return build_views(db, settings, auth, [build])[0]


def _may_read_logs(db: DbSession, auth: AuthContext, settings: Settings, repo: Repository) -> bool:
    if auth.is_global_readonly_superuser or auth.has_superuser_full_access:
        return True
    return settings.FEATURE_READER_BUILD_LOGS or permissions.can_write_repository(db, auth, repo)


@router.get(
    "/api/v1/repository/{repository:repopath}/build/{build_uuid}/logs",
    operation_id="getRepoBuildLogs",
)
def get_repo_build_logs(
    repository: str,
    build_uuid: str,
    request: Request,
    db: DbDep,
    auth: AuthDep,
    settings: SettingsDep,
) -> dict[str, Any]:
    repo = repository_for(db, auth, repository, Role.read, reading=True, missing_ok=True)
    if repo is not None and not _may_read_logs(db, auth, settings, repo):
        raise unauthorized(auth)
    start = int_query(request, "start", 0, "Start index for the logs") or 0
    build = _build_in(db, repo, build_uuid) if repo is not None else None
    if build is None:
        raise _unknown_build(build_uuid)
    return logs_body(db, build, start)


@router.get(
    "/api/v1/repository/{repository:repopath}/build/{build_uuid}", operation_id="getRepoBuild"
)
def get_repo_build(
    repository: str, build_uuid: str, db: DbDep, auth: AuthDep, settings: SettingsDep
) -> dict[str, Any]:
    repo = repository_for(db, auth, repository, Role.read, reading=True)
    build = _build_in(db, repo, build_uuid)
    if build is None:
        raise not_found()
    return build_views(db, settings, auth, [build])[0]


@router.delete(
    "/api/v1/repository/{repository:repopath}/build/{build_uuid}",
    operation_id="cancelRepoBuild",
    status_code=201,
)
def cancel_repo_build(
    repository: str,
    build_uuid: str,
    request: Request,
    db: DbDep,
    settings: SettingsDep,
    auth: AuthDep,
) -> JSONResponse:
    repo = repository_for(db, auth, repository, Role.admin)
    require_normal_state(repo)
    build = _build_in(db, repo, build_uuid)
    if build is None:
        raise not_found()
    if not build_rules.cancel_build(db, settings, build, auth=auth, ip=client_ip(request)):
        raise invalid_request("Build is currently running or has finished")
    return JSONResponse("Okay", status_code=201)


# --- filedrop --------------------------------------------------------------------------------


class FiledropBody(BaseModel):
    mimeType: str


@router.post("/api/v1/filedrop/", operation_id="getFiledropUrl")
def get_filedrop_url(body: JsonBody, db: DbDep, auth: AuthDep, settings: SettingsDep) -> dict:
    data = validate_body(FiledropBody, body)
    user_file = user_files.announce(db, data.mimeType)
    db.commit()
    return {"url": userfile_url(settings, user_file.uuid, signed=False), "file_id": user_file.uuid}


@router.put("/userfiles/{file_id}", operation_id="putUserFile", include_in_schema=False)
async def put_user_file(file_id: str, request: Request) -> JSONResponse:
    """Store an upload announced by filedrop; the unguessable id is the credential, as in Quay."""
    session_factory = request.app.state.session_factory
    store = request.app.state.store
    with session_factory() as db:
        user_files.require_awaiting_upload(db, file_id)
    upload_id = str(uuid.uuid4())
    state = store.begin_upload(upload_id)
    writer = store.open_upload(upload_id, state)
    digest = hashlib.sha256()
    size = 0
    try:
        async for chunk in request.stream():
            if chunk:
                await run_in_threadpool(writer.write, chunk)
                digest.update(chunk)
                size += len(chunk)
        state = await run_in_threadpool(writer.close)
    except BaseException:
        writer.abort()
        store.cancel_upload(upload_id, state)
        raise
    name = "sha256:" + digest.hexdigest()
    await run_in_threadpool(store.sync_upload, upload_id, state)
    await run_in_threadpool(store.commit_upload, upload_id, state, name)
    with session_factory() as db:
        user_files.record_upload(db, file_id, name, size)
        db.commit()
    return JSONResponse("Okay")


@router.get("/userfiles/{file_id}", operation_id="getUserFile", include_in_schema=False)
def get_user_file(file_id: str, request: Request, db: DbDep, settings: SettingsDep):
    """Serve an uploaded build input to holders of a link signed in the last few minutes."""
    try:
        signed_id = _userfile_serializer(settings).loads(
            request.query_params.get("token", ""), max_age=USERFILE_URL_SECONDS
        )
    except BadSignature as exc:
        raise not_found() from exc
    user_file = user_files.stored(db, file_id)
    if signed_id != file_id or user_file is None:
        raise not_found()
    try:
        chunks = request.app.state.store.read_blob(user_file.digest)
    except BlobNotFound as exc:
        raise not_found() from exc
    return StreamingResponse(chunks, media_type=user_file.mime_type)
