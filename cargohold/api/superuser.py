"""Superuser administration: organizations and the registry-size calculation."""

from __future__ import annotations

from typing import Any

from fastapi.responses import JSONResponse

from cargohold.api.deps import AuthDep, DbDep, SettingsDep, require_fresh_login
from cargohold.api.routing import ApiRouter
from cargohold.api.superuser_access import (
    require_superuser,
    require_superuser_feature,
    require_superuser_reader,
)
from cargohold.domain import quota as quotas

router = ApiRouter(tags=["superuser"])


@router.get("/api/v1/superuser/registrysize/", operation_id="getRegistrySize")
def get_registry_size(db: DbDep, auth: AuthDep, settings: SettingsDep) -> Any:
    require_superuser_feature(settings)
    require_fresh_login(auth, settings)
    require_superuser_reader(auth)
    return quotas.registry_size_view(db)


@router.post("/api/v1/superuser/registrysize/", operation_id="postRegistrySize")
def post_registry_size(db: DbDep, auth: AuthDep, settings: SettingsDep) -> JSONResponse:
    """201 when a calculation was queued now, 202 when one is already queued or running."""
    require_superuser_feature(settings)
    require_fresh_login(auth, settings)
    require_superuser(auth)
    queued = quotas.queue_registry_size(db)
    db.commit()
    return JSONResponse("", status_code=201 if queued else 202)
