"""Repository content made directly in the database, for API tests that need history
without going through the registry protocol (manifests, tags, labels)."""

from __future__ import annotations

import hashlib
import json
import secrets

from sqlalchemy import select

from cargohold.db.models.accounts import User
from cargohold.db.models.registry import Manifest, ManifestBlob, ManifestChild, Repository
from cargohold.domain import blobs, repositories
from cargohold.domain.tags import history as tag_history
from cargohold.storage import make_store
from tests.support.server import LiveServer

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def make_repository(
    server: LiveServer, namespace: str, name: str | None = None, *, public: bool = False
) -> str:
    name = name or f"repo{secrets.token_hex(3)}"
    with server.db() as session:
        owner = session.scalar(select(User).where(User.username == namespace))
        creator = None if owner.organization else owner
        repositories.create_repository(
            session, owner, name, public=public, description=None, creator=creator
        )
    return f"{namespace}/{name}"


def _repository(session, path: str) -> Repository:
    namespace, name = path.split("/", 1)
    return repositories.find_repository(session, namespace, name)


def store_config(server: LiveServer, history: list[dict]) -> dict:
    """An image config blob holding `history`, written to the server's storage."""
    data = json.dumps({"architecture": "amd64", "os": "linux", "history": history}).encode()
    digest = sha256(data)
    make_store(server.settings).put_blob(digest, data)
    return {"mediaType": OCI_CONFIG, "digest": digest, "size": len(data)}


def add_manifest(
    server: LiveServer,
    path: str,
    layer_sizes: tuple[int, ...] = (100, 200),
    config: dict | None = None,
) -> str:
    """An image manifest with random layer digests; returns its digest."""
    layers = [
        {"mediaType": OCI_LAYER, "digest": sha256(secrets.token_bytes(16)), "size": size}
        for size in layer_sizes
    ]
    config = config or {
        "mediaType": OCI_CONFIG,
        "digest": sha256(secrets.token_bytes(16)),
        "size": 10,
    }
    body = json.dumps(
        {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config, "layers": layers}
    ).encode()
    digest = sha256(body)
    with server.db() as session:
        repo = _repository(session, path)
        session.add(
            Manifest(
                repository_id=repo.id,
                digest=digest,
                media_type=OCI_MANIFEST,
                manifest_bytes=body,
                config_media_type=OCI_CONFIG,
                layers_compressed_size=sum(layer_sizes),
            )
        )
    return digest


def add_index(server: LiveServer, path: str, children: list[str], missing: list[str]) -> str:
    """A manifest list naming stored children and children that were never stored."""
    entries = [
        {"mediaType": OCI_MANIFEST, "digest": digest, "size": 300}
        for digest in [*children, *missing]
    ]
    body = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries}).encode()
    digest = sha256(body)
    with server.db() as session:
        repo = _repository(session, path)
        index = Manifest(
            repository_id=repo.id,
            digest=digest,
            media_type=OCI_INDEX,
            manifest_bytes=body,
            layers_compressed_size=None,
        )
        session.add(index)
        session.flush()
        for child in children:
            child_id = session.scalar(
                select(Manifest.id).where(
                    Manifest.repository_id == repo.id, Manifest.digest == child
                )
            )
            session.add(
                ManifestChild(
                    repository_id=repo.id, manifest_id=index.id, child_manifest_id=child_id
                )
            )
    return digest


def tag_manifest(server: LiveServer, path: str, name: str, digest: str) -> None:
    """Point a tag at a manifest as a push would (ending the previous row)."""
    with server.db() as session:
        repo = _repository(session, path)
        manifest = tag_history.find_manifest(session, repo, digest)
        tag_history.retarget(session, repo, name, manifest)


def add_stored_manifest(server: LiveServer, path: str, layers: list[bytes]) -> str:
    """An image whose layers are real blobs in storage, linked as a push links them."""
    store = make_store(server.settings)
    descriptors = []
    for data in layers:
        digest = sha256(data)
        store.put_blob(digest, data)
        descriptors.append({"mediaType": OCI_LAYER, "digest": digest, "size": len(data)})
    body = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": descriptors[0]["digest"], "size": 1},
            "layers": descriptors,
        }
    ).encode()
    digest = sha256(body)
    with server.db() as session:
        repo = _repository(session, path)
        manifest = Manifest(
            repository_id=repo.id,
            digest=digest,
            media_type=OCI_MANIFEST,
            manifest_bytes=body,
            config_media_type=OCI_CONFIG,
            layers_compressed_size=sum(len(data) for data in layers),
        )
        session.add(manifest)
        session.flush()
        for descriptor in descriptors:
            blob = blobs.ensure_blob(session, descriptor["digest"], descriptor["size"])
            blobs.link_blob(session, repo.id, blob.id, expires_at=None)
            session.add(
                ManifestBlob(repository_id=repo.id, manifest_id=manifest.id, blob_id=blob.id)
            )
    return digest
