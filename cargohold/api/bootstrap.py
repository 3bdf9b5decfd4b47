"""What Quay's web UI reads before anything else: /config and the /.well-known documents."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, RedirectResponse

from cargohold.api.cors import cors_headers
from cargohold.api.deps import DbDep, SettingsDep, resolve_caller
from cargohold.api.errors import JsonError
from cargohold.auth.context import AuthKind
from cargohold.config import Settings
from cargohold.domain.client_config import client_config

router = APIRouter(include_in_schema=False)

LOGIN_REQUIRED = "Method requires login and no valid login could be loaded."


@router.api_route("/config", methods=["GET", "OPTIONS"])
def get_config(request: Request, settings: SettingsDep) -> JSONResponse:
    """The client bootstrap document; CORS headers only for configured origins."""
    headers = cors_headers(settings, request.headers.get("origin"), anonymous=False)
    return JSONResponse(client_config(settings), headers=headers)


def _app_capabilities(settings: Settings) -> dict[str, Any]:
    base = settings.server_url
    repository_api = f"{base}/api/v1/repository/{{namespace}}/{{reponame}}"
    return {
        "appName": "io.quay",
        "capabilities": {
            "io.quay.view-image": {"url-template": f"{base}/{{namespace}}/{{reponame}}:{{tag}}"},
            "io.quay.image-security": {
                "rest-api-template": f"{repository_api}/image/{{imageid}}/security",
                "deprecated": True,
            },
            "io.quay.manifest-security": {
                "rest-api-template": f"{repository_api}/manifest/{{digest}}/security"
            },
        },
    }


@router.get("/.well-known/app-capabilities")
def app_capabilities(settings: SettingsDep) -> JSONResponse:
    return JSONResponse(_app_capabilities(settings))


@router.get("/.well-known/change-password")
def change_password(request: Request, db: DbDep, settings: SettingsDep) -> RedirectResponse:
    """Password managers' link to the page where the signed-in user changes the password."""
    auth = resolve_caller(request, db, settings)
    if auth.user is None or auth.kind is not AuthKind.SESSION:
        raise JsonError(401, {"error": LOGIN_REQUIRED})
    if settings.WEB_UI_PATH:
        return RedirectResponse(f"/user/{auth.user.username}?tab=settings", status_code=302)
    return RedirectResponse("/#/account", status_code=302)
