"""Stars: the caller's starred repositories (createStar, listStarredRepos, deleteStar).

A repository the caller may not read is answered exactly like one that does not exist
(Quay's 200 `null`), so stars never reveal private repositories; the starred list shows only
what the caller may read now, so a repository whose access was lost drops out of it.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from cargohold.api.deps import AuthDep, DbDep, JsonBody, SettingsDep, validate_body
from cargohold.api.errors import unauthorized
from cargohold.api.routing import ApiRouter
from cargohold.auth.context import AuthContext
from cargohold.db.models.accounts import User
from cargohold.db.models.registry import Repository
from cargohold.db.session import DbSession
from cargohold.domain import permissions, repositories
from cargohold.paging import encode_page_token, start_id

router = ApiRouter(tags=["user"])
PAGE_SIZE = 100


class StarBody(BaseModel):
    namespace: str
    repository: str


def _require_user_admin(auth: AuthContext) -> User:
    """The caller acting on their own account (an OAuth token needs user:admin)."""
    if auth.user is None or auth.user.robot or not auth.can_admin_self():
        raise unauthorized(auth)
    return auth.user


def _readable(db: DbSession, auth: AuthContext, repo: Repository | None) -> Repository | None:
    """The repository if the caller may read it, else None as if it did not exist."""
    if repo is None or not permissions.can_read_repository(db, auth, repo):
        return None
    return repo


@router.get("/api/v1/user/starred", operation_id="listStarredRepos")
def list_starred(
    request: Request, db: DbDep, auth: AuthDep, settings: SettingsDep
) -> dict[str, Any]:
    user = _require_user_admin(auth)
    rows, next_id = repositories.page_by_id(
        db,
        repositories.starred_by(permissions.listable_repositories(auth, include_public=True), user),
        start_id(settings, request.query_params.get("next_page")),
        PAGE_SIZE,
    )
    body: dict[str, Any] = {
        "repositories": [
            {
                "namespace": repo.namespace_user.username,
                "name": repo.name,
                "description": repo.description,
                "is_public": repo.public,
            }
            for repo in rows
        ]
    }
    if next_id is not None:
        body["next_page"] = encode_page_token(settings, {"start_id": next_id})
    return body


@router.post("/api/v1/user/starred", operation_id="createStar", status_code=201)
def create_star(db: DbDep, auth: AuthDep, raw: JsonBody) -> Any:
    body = validate_body(StarBody, raw)
    user = _require_user_admin(auth)
    repo = _readable(db, auth, repositories.find_repository(db, body.namespace, body.repository))
    if repo is None:
        return JSONResponse(None, status_code=200)
    repositories.star(db, user, repo)
    db.commit()
    return {"namespace": body.namespace, "repository": body.repository}


@router.delete("/api/v1/user/starred/{repository:repopath}", operation_id="deleteStar")
def delete_star(repository: str, db: DbDep, auth: AuthDep) -> Response:
    user = _require_user_admin(auth)
    parts = repositories.split_repository_path(repository)
    repo = _readable(db, auth, repositories.find_repository(db, *parts) if parts else None)
    if repo is None:
        return JSONResponse(None, status_code=200)
    repositories.unstar(db, user, repo)
    db.commit()
    return Response(status_code=204)
