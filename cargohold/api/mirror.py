"""Repository mirror configuration and sync controls."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from typing import Any, Literal

from fastapi import Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr

from cargohold.api.deps import (
    AuthDep,
    Caller,
    CallerDep,
    DbDep,
    JsonBody,
    SettingsDep,
    validate_body,
)
from cargohold.api.errors import (
    NOT_FOUND_TEXT,
    MessageError,
    not_found,
)
from cargohold.api.repo_access import require_repository
from cargohold.api.routing import ApiRouter, json_body_schema
from cargohold.auth.context import AuthContext
from cargohold.config import Settings
from cargohold.db.models.mirror import RepoMirrorConfig
from cargohold.db.models.registry import Repository, Role
from cargohold.db.session import DbSession
from cargohold.domain import mirror

router = ApiRouter(tags=["mirror"])
SyncControl = Callable[..., bool]
MIRROR_PATH = "/api/v1/repository/{repository:repopath}/mirror"


# Quay's schema closes no nested object: unknown keys inside them are accepted (and kept in
# the stored registry config, which is shown back as stored). Only the top level is closed,
# where Quay would fail on an unknown key.


class Proxy(BaseModel):
    model_config = ConfigDict(extra="allow")

    http_proxy: StrictStr | None = None
    https_proxy: StrictStr | None = None
    no_proxy: StrictStr | None = None


class RegistryConfig(BaseModel):
    model_config = ConfigDict(extra="allow")

    verify_tls: StrictBool = Field(default=None)
    unsigned_images: StrictBool = Field(default=None)
    proxy: Proxy = Field(default=None)


class RootRule(BaseModel):
    model_config = ConfigDict(extra="ignore")

    rule_kind: Literal["tag_glob_csv"]
    rule_value: list[StrictStr]


class CreateMirrorConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", title="CreateMirrorConfig")

    external_reference: StrictStr
    sync_interval: StrictInt = Field(ge=0)
    sync_start_date: StrictStr
    root_rule: RootRule
    # Quay requires it; older clients leave it out, and 300 is the smallest value allowed.
    skopeo_timeout_interval: StrictInt = Field(default=300, ge=300)
    robot_username: StrictStr
    is_enabled: StrictBool = True
    external_registry_username: StrictStr | None = None
    external_registry_password: StrictStr | None = None
    external_registry_config: RegistryConfig = Field(default=None)
    architecture_filter: list[StrictStr] | None = None


class UpdateMirrorConfig(BaseModel):
    """Every key optional; an explicit null is refused where a value is required."""

    model_config = ConfigDict(extra="forbid", title="UpdateMirrorConfig")

    external_reference: StrictStr = Field(default=None)
    sync_interval: StrictInt = Field(default=None, ge=0)
    sync_start_date: StrictStr = Field(default=None)
    root_rule: RootRule = Field(default=None)
    skopeo_timeout_interval: StrictInt = Field(default=None, ge=300)
    robot_username: StrictStr = Field(default=None)
    is_enabled: StrictBool = Field(default=None)
    external_registry_username: StrictStr | None = None
    external_registry_password: StrictStr | None = None
    external_registry_config: RegistryConfig = Field(default=None)
    architecture_filter: list[StrictStr] | None = None


def _input(body: CreateMirrorConfig | UpdateMirrorConfig) -> mirror.MirrorInput:
    registry_config = body.external_registry_config
    return mirror.MirrorInput(
        present=set(body.model_fields_set),
        is_enabled=body.is_enabled,
        external_reference=body.external_reference,
        external_registry_username=body.external_registry_username,
        external_registry_password=body.external_registry_password,
        external_registry_config=registry_config.model_dump(exclude_unset=True)
        if registry_config is not None
        else None,
        sync_interval=body.sync_interval,
        sync_start_date=body.sync_start_date,
        robot_username=body.robot_username,
        root_rule=body.root_rule.rule_value if body.root_rule is not None else None,
        skopeo_timeout_interval=body.skopeo_timeout_interval,
        architecture_filter=body.architecture_filter,
    )


def mirror_date(value: dt.datetime | None) -> str | None:
    """ISO-8601 with `Z`; microseconds only when the worker's rescheduling produced them."""
    if value is None:
        return None
    value = value.astimezone(dt.UTC)
    text = value.strftime("%Y-%m-%dT%H:%M:%S")
    if value.microsecond:
        text += f".{value.microsecond:06d}"
    return text + "Z"


def config_view(settings: Settings, config: RepoMirrorConfig) -> dict[str, Any]:
    return {
        "is_enabled": config.is_enabled,
        "mirror_type": config.mirror_type,
        "external_reference": config.external_reference,
        "external_registry_username": mirror.decrypt_or_marker(settings, config.username_encrypted),
        "external_registry_config": json.loads(config.external_registry_config or "{}"),
        "sync_interval": config.sync_interval,
        "sync_start_date": mirror_date(config.sync_start_date),
        "sync_expiration_date": mirror_date(config.sync_expiration_date),
        "sync_retries_remaining": config.sync_retries_remaining,
        "sync_status": config.sync_status.value,
        "root_rule": {"rule_kind": config.rule_kind, "rule_value": json.loads(config.rule_value)},
        "robot_username": config.robot.username,
        "skopeo_timeout_interval": config.skopeo_timeout_interval,
        "architecture_filter": json.loads(config.architecture_filter or "[]"),
    }


def _repository(
    db: DbSession, settings: Settings, auth: AuthContext, path: str, *, reading: bool = False
) -> Repository:
    if not settings.FEATURE_REPO_MIRROR:
        raise MessageError(404, NOT_FOUND_TEXT)
    return require_repository(db, auth, path, Role.admin, superuser_read=reading)


def _config(db: DbSession, repository: Repository) -> RepoMirrorConfig:
    config = mirror.get_config(db, repository)
    if config is None:
        raise not_found()
    return config


def _sync_control(call: Caller, path: str, control: SyncControl) -> Response:
    """A sync request or cancellation; 404 when the mirror is in no state it applies to."""
    repo = _repository(call.db, call.settings, call.auth, path)
    config = _config(call.db, repo)
    if not control(call.db, repo, config, auth=call.auth, ip=call.ip):
        raise not_found()
    call.db.commit()
    return Response(status_code=204)


@router.get(MIRROR_PATH, operation_id="getRepoMirrorConfig")
def get_mirror(repository: str, db: DbDep, settings: SettingsDep, auth: AuthDep) -> dict:
    """The repository's mirror configuration (the upstream password is never shown)."""
    repo = _repository(db, settings, auth, repository, reading=True)
    return config_view(settings, _config(db, repo))


@router.post(
    MIRROR_PATH,
    operation_id="createRepoMirrorConfig",
    status_code=201,
    openapi_extra=json_body_schema(CreateMirrorConfig),
)
def create_mirror(repository: str, call: CallerDep, raw: JsonBody) -> JSONResponse:
    """Configure pull mirroring; the repository switches to MIRROR state."""
    repo = _repository(call.db, call.settings, call.auth, repository)
    body = validate_body(CreateMirrorConfig, raw)
    mirror.create_config(call.db, call.settings, repo, _input(body), auth=call.auth, ip=call.ip)
    call.db.commit()
    return JSONResponse("", status_code=201)


@router.put(
    MIRROR_PATH,
    operation_id="changeRepoMirrorConfig",
    status_code=201,
    openapi_extra=json_body_schema(UpdateMirrorConfig),
)
def change_mirror(repository: str, call: CallerDep, raw: JsonBody) -> JSONResponse:
    """Change any part of the mirror configuration."""
    repo = _repository(call.db, call.settings, call.auth, repository)
    config = _config(call.db, repo)
    body = validate_body(UpdateMirrorConfig, raw)
    mirror.update_config(
        call.db, call.settings, repo, config, _input(body), auth=call.auth, ip=call.ip
    )
    call.db.commit()
    return JSONResponse("", status_code=201)


@router.post(f"{MIRROR_PATH}/sync-now", operation_id="syncNow", status_code=204)
def sync_now(repository: str, call: CallerDep) -> Response:
    """Sync at the worker's next pass; 404 while a sync is already running."""
    return _sync_control(call, repository, mirror.sync_now)


@router.post(f"{MIRROR_PATH}/sync-cancel", operation_id="syncCancel", status_code=204)
def sync_cancel(repository: str, call: CallerDep) -> Response:
    """Cancel a requested or running sync; 404 when there is none."""
    return _sync_control(call, repository, mirror.sync_cancel)
