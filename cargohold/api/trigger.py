"""Build triggers: setup, list, get, toggle, delete, activate, manual start and recent builds."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any, TypeVar

from fastapi import Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from pydantic import BaseModel, ConfigDict

from cargohold.api.build import (
    admin_or_global_reader,
    admin_trigger_view,
    build_views,
    created_build,
    int_query,
    repository_for,
    resolve_pull_robot,
    trigger_view,
)
from cargohold.api.deps import (
    AuthDep,
    Caller,
    CallerDep,
    DbDep,
    JsonBody,
    SettingsDep,
    client_ip,
    require_csrf_token,
    validate_body,
)
from cargohold.api.errors import ApiError, invalid_request, not_found, unauthorized
from cargohold.api.repo_access import require_normal_state
from cargohold.api.routing import ApiRouter
from cargohold.auth.context import AuthContext, AuthKind
from cargohold.config import Settings
from cargohold.db.models.builds import BuildTrigger
from cargohold.db.models.registry import Repository, Role
from cargohold.db.session import DbSession
from cargohold.domain import builds as build_rules
from cargohold.domain import triggers

router = ApiRouter(tags=["trigger"])
BodyModel = TypeVar("BodyModel", bound=BaseModel)

TRIGGER_PATH = "/api/v1/repository/{repository:repopath}/trigger/{trigger_uuid}"


def _trigger_in(db: DbSession, repository: Repository | None, trigger_uuid: str) -> BuildTrigger:
    trigger = triggers.find_trigger(db, repository, trigger_uuid) if repository else None
    if trigger is None:
        raise not_found()
    return trigger


def _admin_repository(db: DbSession, auth: AuthContext, path: str) -> Repository:
    repository = repository_for(db, auth, path, Role.admin)
    require_normal_state(repository)
    return repository


def _trigger_change(
    call: Caller,
    path: str,
    trigger_uuid: str,
    body: dict[str, Any],
    parse: Callable[[dict[str, Any]], BodyModel],
) -> tuple[Repository, BodyModel, BuildTrigger]:
    """A change to a trigger: the repository (admins, NORMAL state), the body, the trigger."""
    repo = _admin_repository(call.db, call.auth, path)
    data = parse(body)
    return repo, data, _trigger_in(call.db, repo, trigger_uuid)


def _scm_not_configured(settings: Settings, trigger: BuildTrigger) -> None:
    """SCM triggers need their service's integration, which this installation does not have."""
    if trigger.service != triggers.CUSTOM_GIT:
        raise invalid_request(
            f"{trigger.service} build triggers are not configured on this installation"
        )


@router.get("/api/v1/repository/{repository:repopath}/trigger/", operation_id="listBuildTriggers")
def list_build_triggers(
    repository: str, db: DbDep, auth: AuthDep, settings: SettingsDep
) -> dict[str, Any]:
    repo = admin_or_global_reader(db, auth, repository, missing_ok=True)
    if repo is None:
        return {"triggers": []}
    return {"triggers": [admin_trigger_view(settings, t) for t in triggers.list_triggers(db, repo)]}


@router.get(TRIGGER_PATH + "/builds", operation_id="listTriggerRecentBuilds")
def list_trigger_recent_builds(
    repository: str,
    trigger_uuid: str,
    request: Request,
    db: DbDep,
    auth: AuthDep,
    settings: SettingsDep,
) -> dict[str, Any]:
    limit = int_query(request, "limit", 5, "The maximum number of builds to return")
    repo = admin_or_global_reader(db, auth, repository, missing_ok=True)
    trigger = triggers.find_trigger(db, repo, trigger_uuid) if repo is not None else None
    if trigger is None:
        return {"builds": []}
    items = build_rules.list_builds(db, repo, limit=limit, trigger=trigger)
    return {"builds": build_views(db, settings, auth, items)}


class ActivateBody(BaseModel):
    model_config = ConfigDict(extra="allow")

    config: dict[str, Any]
    pull_robot: str | None = None


def _is_connected_user(auth: AuthContext, trigger: BuildTrigger) -> bool:
    if auth.has_superuser_full_access:
        return True
    return (
        auth.user is not None
        and auth.user.id == trigger.connected_user_id
        and auth.can_admin_self()
    )


@router.post(TRIGGER_PATH + "/activate", operation_id="activateBuildTrigger")
def activate_build_trigger(
    repository: str, trigger_uuid: str, body: JsonBody, call: CallerDep
) -> dict[str, Any]:
    db, auth, settings = call.db, call.auth, call.settings
    repo, data, trigger = _trigger_change(
        call, repository, trigger_uuid, body, partial(validate_body, ActivateBody)
    )
    if triggers.is_active(trigger):
        raise invalid_request("Trigger config is not sufficient for activation.")
    if not _is_connected_user(auth, trigger):
        raise unauthorized(auth)
    pull_robot = None
    if data.pull_robot:
        pull_robot = resolve_pull_robot(db, auth, data.pull_robot)
        if build_rules.robot_namespace_name(pull_robot.username) != repo.namespace_user.username:
            raise unauthorized(auth)
    _scm_not_configured(settings, trigger)
    triggers.activate(db, settings, trigger, repo, data.config, pull_robot, auth=auth, ip=call.ip)
    db.commit()
    return admin_trigger_view(settings, trigger)


class StartBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    branch_name: str | None = None
    commit_sha: Any = None
    refs: dict[str, Any] | None = None


def _validate_start(body: dict[str, Any]) -> StartBody:
    unexpected = [key for key in body if key not in StartBody.model_fields]
    if unexpected:
        names = ", ".join(repr(key) for key in unexpected)
        verb = "was" if len(unexpected) == 1 else "were"
        raise invalid_request(f"Additional properties are not allowed ({names} {verb} unexpected)")
    return validate_body(StartBody, body)


@router.post(TRIGGER_PATH + "/start", operation_id="manuallyStartBuildTrigger")
def manually_start_build_trigger(
    repository: str, trigger_uuid: str, body: JsonBody, call: CallerDep
) -> JSONResponse:
    db, auth, settings = call.db, call.auth, call.settings
    repo, data, trigger = _trigger_change(call, repository, trigger_uuid, body, _validate_start)
    if not trigger.enabled:
        raise invalid_request("Trigger is not enabled.")
    if not triggers.is_active(trigger):
        raise invalid_request("Trigger is not active.")
    _scm_not_configured(settings, trigger)
    build_source = triggers.config_of(trigger).get("build_source", "")
    build = build_rules.start_trigger_build(
        db,
        settings,
        trigger,
        build_rules.manual_metadata(build_source, data.commit_sha),
        manual_user=auth.user,
        auth=auth,
        ip=call.ip,
    )
    return created_build(db, settings, auth, repo, build)


@router.get(TRIGGER_PATH, operation_id="getBuildTrigger")
def get_build_trigger(
    repository: str, trigger_uuid: str, db: DbDep, auth: AuthDep, settings: SettingsDep
) -> dict[str, Any]:
    repo = admin_or_global_reader(db, auth, repository, missing_ok=True)
    return admin_trigger_view(settings, _trigger_in(db, repo, trigger_uuid))


class UpdateBody(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)

    enabled: bool


@router.put(TRIGGER_PATH, operation_id="updateBuildTrigger")
def update_build_trigger(
    repository: str, trigger_uuid: str, body: JsonBody, call: CallerDep
) -> dict[str, Any]:
    repo, data, trigger = _trigger_change(
        call, repository, trigger_uuid, body, partial(validate_body, UpdateBody)
    )
    if not triggers.is_active(trigger):
        raise invalid_request("Cannot update an unactivated trigger")
    triggers.set_enabled(call.db, trigger, repo, data.enabled, auth=call.auth, ip=call.ip)
    call.db.commit()
    return trigger_view(call.settings, trigger, can_read=False, can_admin=False, with_robot=False)


@router.delete(TRIGGER_PATH, operation_id="deleteBuildTrigger", status_code=204)
def delete_build_trigger(
    repository: str, trigger_uuid: str, request: Request, db: DbDep, auth: AuthDep
) -> Response:
    repo = _admin_repository(db, auth, repository)
    trigger = _trigger_in(db, repo, trigger_uuid)
    triggers.delete(db, trigger, repo, auth=auth, ip=client_ip(request))
    db.commit()
    return Response(status_code=204)


@router.get("/customtrigger/setup/{repository:repopath}", include_in_schema=False)
def setup_custom_trigger(
    repository: str, request: Request, db: DbDep, auth: AuthDep
) -> RedirectResponse:
    """The web route that creates an inactive custom-git trigger (signed-in admins only).

    A GET as in Quay, but it writes, so it takes the session's CSRF token like a POST would.
    """
    if auth.kind is not AuthKind.SESSION:
        raise unauthorized(auth)
    require_csrf_token(request)
    repo = repository_for(db, auth, repository, Role.admin)
    if repo.kind != "image":
        raise ApiError(501, "not_implemented", "Build triggers require an image repository")
    trigger = triggers.create_trigger(db, repo, triggers.CUSTOM_GIT, auth.user)
    db.commit()
    return RedirectResponse(f"/repository/{repo.full_name}/trigger/{trigger.uuid}", status_code=302)
