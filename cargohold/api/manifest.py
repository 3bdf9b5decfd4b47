"""Manifests of a repository as the API shows them, and their labels."""

from __future__ import annotations

from typing import Any

from fastapi import Request, Response
from fastapi.responses import JSONResponse

from cargohold.api.deps import AuthDep, DbDep, JsonBody, client_ip
from cargohold.api.errors import (
    invalid_request,
    not_found,
)
from cargohold.api.repo_access import require_normal_state, require_repository
from cargohold.api.routing import ApiRouter
from cargohold.db.models.registry import Manifest, ManifestLabel, Repository, Role
from cargohold.db.session import DbSession
from cargohold.domain import manifest_info, manifests, tags
from cargohold.domain.dates import format_date
from cargohold.domain.tags import history as tag_history

router = ApiRouter(tags=["manifest"])

BASE = "/api/v1/repository/{repository:repopath}/manifest/{digest:digest}"


def _manifest(db: DbSession, repo: Repository, digest: str) -> Manifest:
    return manifest_info.reachable_manifest(db, repo, digest)


def _layer_view(layer: manifest_info.LayerInfo) -> dict[str, Any]:
    return {
        "index": layer.index,
        "compressed_size": layer.compressed_size,
        "is_remote": bool(layer.urls),
        "urls": layer.urls,
        "command": layer.command,
        "comment": layer.comment,
        "author": layer.author,
        "blob_digest": layer.blob_digest,
        "created_datetime": format_date(layer.created),
    }


def label_view(label: ManifestLabel) -> dict[str, Any]:
    return {
        "id": label.uuid,
        "key": label.key,
        "value": label.value,
        "source_type": label.source_type,
        "media_type": label.media_type,
    }


@router.get(BASE, operation_id="getRepoManifest")
def get_manifest(
    repository: str, digest: str, request: Request, db: DbDep, auth: AuthDep
) -> dict[str, Any]:
    repo = require_repository(db, auth, repository, Role.read, reading=True)
    manifest = _manifest(db, repo, digest)
    layers = manifest_info.image_layers(request.app.state.store, manifest)
    is_list = tag_history.is_manifest_list(manifest)
    return {
        "digest": manifest.digest,
        "is_manifest_list": is_list,
        "manifest_data": manifest.manifest_bytes.decode("utf-8", errors="replace"),
        "config_media_type": manifest.config_media_type,
        "layers_compressed_size": 0 if is_list else manifest.layers_compressed_size,
        "layers": None if layers is None else [_layer_view(layer) for layer in layers],
    }


@router.get(BASE + "/labels", operation_id="listManifestLabels")
def list_labels(
    repository: str, digest: str, request: Request, db: DbDep, auth: AuthDep
) -> dict[str, Any]:
    repo = require_repository(db, auth, repository, Role.read, reading=True)
    manifest = _manifest(db, repo, digest)
    found = manifest_info.labels(db, manifest, request.query_params.get("filter"))
    return {"labels": [label_view(label) for label in found]}


@router.get(BASE + "/referrers", operation_id="listManifestReferrers")
def list_referrers(
    repository: str, digest: str, request: Request, db: DbDep, auth: AuthDep
) -> dict[str, Any]:
    """The OCI 1.1 referrers of a manifest (signatures, SBOMs, attestations) for API callers.

    The same descriptors as /v2/<repo>/referrers/<digest>, reachable with the API's session or
    OAuth credentials, which the registry protocol does not take.
    """
    repo = require_repository(db, auth, repository, Role.read, reading=True)
    _manifest(db, repo, digest)
    artifact_type = request.query_params.get("artifactType") or None
    found = manifests.list_referrers(db, repo.id, digest, tags.now_ms(), artifact_type)
    return {"manifests": [referrer.descriptor() for referrer in found]}


def _label_body(body: dict[str, Any]) -> tuple[str, str, str | None]:
    for key in ("key", "value", "media_type"):
        if key not in body:
            raise invalid_request(f"'{key}' is a required property")
    key, value, media_type = body["key"], body["value"], body["media_type"]
    if not isinstance(key, str):
        raise invalid_request(f"{key!r} is not of type 'string'")
    if not isinstance(value, str):
        raise invalid_request(f"{value!r} is not of type 'string'")
    if media_type is not None and media_type not in manifest_info.LABEL_MEDIA_TYPES:
        raise invalid_request(
            f"{media_type!r} is not one of ['text/plain', 'application/json', None]"
        )
    return key, value, media_type


@router.post(BASE + "/labels", operation_id="addManifestLabel")
def add_label(
    repository: str, digest: str, request: Request, db: DbDep, auth: AuthDep, body: JsonBody
) -> JSONResponse:
    repo = require_repository(db, auth, repository, Role.write)
    require_normal_state(repo)
    label = manifest_info.add_requested(
        db, repo, digest, _label_body(body), auth=auth, ip=client_ip(request)
    )
    db.commit()
    location = f"/api/v1/repository/{repository}/manifest/{digest}/labels/{label.uuid}"
    return JSONResponse(
        {"label": label_view(label)}, status_code=201, headers={"Location": location}
    )


@router.get(BASE + "/labels/{label_id}", operation_id="getManifestLabel")
def get_label(
    repository: str, digest: str, label_id: str, db: DbDep, auth: AuthDep
) -> dict[str, Any]:
    repo = require_repository(db, auth, repository, Role.read, reading=True)
    label = manifest_info.find_label(db, _manifest(db, repo, digest), label_id)
    if label is None:
        raise not_found()
    return label_view(label)


@router.delete(BASE + "/labels/{label_id}", operation_id="deleteManifestLabel")
def delete_label(
    repository: str, digest: str, label_id: str, request: Request, db: DbDep, auth: AuthDep
) -> Response:
    repo = require_repository(db, auth, repository, Role.write)
    require_normal_state(repo)
    manifest_info.delete_requested(db, repo, digest, label_id, auth=auth, ip=client_ip(request))
    db.commit()
    return Response(status_code=204)
