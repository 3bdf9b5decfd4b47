"""What the API tells about a stored manifest: its layers with their build history, and labels."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from cargohold.auth.context import AuthContext
from cargohold.db.models.registry import Manifest, ManifestLabel, Repository
from cargohold.domain.audit import log_repository_action
from cargohold.domain.errors import ModelError, NotFound
from cargohold.domain.manifests import (
    INDEX_TYPES,
    OCI_IMAGE_CONFIG,
    OCI_MANIFEST,
    ParsedManifest,
    label_media_type,
)
from cargohold.domain.tags import history as tag_history
from cargohold.storage.base import BlobStore, StorageError

# Image configs are small; anything bigger is not read for layer history.
MAX_CONFIG_BYTES = 4 * 1024 * 1024
LABEL_KEY_RE = re.compile(r"^[a-z0-9](([a-z0-9]|[-.](?![.-]))*[a-z0-9])?$")
LABEL_KEY_MAX = 255
RESERVED_LABEL_PREFIXES = (
    "com.docker.",
    "io.docker.",
    "org.dockerproject.",
    "org.opencontainers.",
    "io.cncf.",
    "io.kubernetes.",
    "io.k8s.",
    "io.quay",
    "com.coreos",
    "com.tectonic",
    "internal",
    "quay",
)
LABEL_MEDIA_TYPES = ("text/plain", "application/json")
DOCKER_IMAGE_CONFIG = "application/vnd.docker.container.image.v1+json"
IMAGE_CONFIG_TYPES = frozenset({OCI_IMAGE_CONFIG, DOCKER_IMAGE_CONFIG})


class LabelError(ModelError):
    """A label was refused; the message is Quay's wording."""


@dataclass
class LayerInfo:
    index: int
    blob_digest: str
    compressed_size: int | None
    urls: list[str] | None
    command: list[str] | None
    comment: str | None
    author: str | None
    created: dt.datetime | None


def _document(manifest: Manifest) -> dict[str, Any]:
    try:
        value = json.loads(manifest.manifest_bytes)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _read_config(store: BlobStore, digest: str) -> dict[str, Any]:
    chunks: list[bytes] = []
    total = 0
    try:
        for chunk in store.read_blob(digest):
            total += len(chunk)
            if total > MAX_CONFIG_BYTES:
                return {}
            chunks.append(chunk)
        value = json.loads(b"".join(chunks))
    except (StorageError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def _parse_time(value: Any) -> dt.datetime | None:
    if not isinstance(value, str):
        return None
    text = value.replace("Z", "+00:00")
    # Fractions beyond microseconds (Go writes nanoseconds) are cut for fromisoformat.
    text = re.sub(r"(\.\d{6})\d+", r"\1", text)
    try:
        parsed = dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def image_layers(store: BlobStore, manifest: Manifest) -> list[LayerInfo] | None:
    """Layers base first, each with the config history entry that built it; None for lists."""
    if manifest.media_type in INDEX_TYPES:
        return None
    document = _document(manifest)
    layers = [layer for layer in document.get("layers") or [] if isinstance(layer, dict)]
    config = document.get("config")
    history: list[dict[str, Any]] = []
    if isinstance(config, dict) and isinstance(config.get("digest"), str):
        entries = _read_config(store, config["digest"]).get("history") or []
        history = [
            entry
            for entry in entries
            if isinstance(entry, dict) and not entry.get("empty_layer", False)
        ]
    found = []
    for index, layer in enumerate(layers):
        entry = history[index] if index < len(history) else {}
        created_by = _text(entry.get("created_by"))
        size = layer.get("size")
        urls = layer.get("urls")
        found.append(
            LayerInfo(
                index=index,
                blob_digest=str(layer.get("digest", "")),
                compressed_size=size if isinstance(size, int) else None,
                urls=urls if isinstance(urls, list) else None,
                command=[created_by] if created_by else None,
                comment=_text(entry.get("comment")),
                author=_text(entry.get("author")),
                created=_parse_time(entry.get("created")),
            )
        )
    return found


def labels(session: Session, manifest: Manifest, key_prefix: str | None) -> Sequence[ManifestLabel]:
    query = select(ManifestLabel).where(ManifestLabel.manifest_id == manifest.id)
    if key_prefix:
        query = query.where(ManifestLabel.key.startswith(key_prefix, autoescape=True))
    return session.scalars(query.order_by(ManifestLabel.id)).all()


def find_label(session: Session, manifest: Manifest, label_id: str) -> ManifestLabel | None:
    return session.scalar(
        select(ManifestLabel).where(
            ManifestLabel.manifest_id == manifest.id, ManifestLabel.uuid == label_id
        )
    )


def is_mutable(label: ManifestLabel) -> bool:
    """Only labels added through the API can be deleted; those from content stay with it."""
    return label.source_type == "api"


def has_reserved_prefix(key: str) -> bool:
    return key.startswith(RESERVED_LABEL_PREFIXES)


def add_label(
    session: Session, manifest: Manifest, key: str, value: str, media_type: str | None
) -> ManifestLabel:
    if len(key) > LABEL_KEY_MAX or not LABEL_KEY_RE.match(key):
        raise LabelError(
            "Label is of an invalid format or missing please use "
            f"{LABEL_KEY_RE.pattern} format for labels"
        )
    if media_type is None:
        media_type = label_media_type(value)
    if media_type not in LABEL_MEDIA_TYPES:
        raise LabelError(
            "Media type is invalid please use a valid media type: text/plain, application/json"
        )
    label = ManifestLabel(
        repository_id=manifest.repository_id,
        manifest_id=manifest.id,
        key=key,
        value=value,
        media_type=media_type,
        source_type="api",
    )
    session.add(label)
    session.flush()
    return label


def reachable_manifest(session: Session, repository: Repository, digest: str) -> Manifest:
    """A manifest the API may show: reachable from the repository's tags, with its bytes."""
    manifest = tag_history.find_reachable_manifest(session, repository, digest)
    if manifest is None or not manifest.manifest_bytes:
        raise NotFound()
    return manifest


def _log_label(
    session: Session,
    kind: str,
    repository: Repository,
    label: ManifestLabel,
    digest: str,
    auth: AuthContext,
    ip: str | None,
    **extra: Any,
) -> None:
    entry = {
        "id": label.uuid,
        "key": label.key,
        "value": label.value,
        "manifest_digest": digest,
        **extra,
        "namespace": repository.namespace_user.username,
        "repo": repository.name,
    }
    log_repository_action(session, kind, repository, auth=auth, ip=ip, metadata=entry)


def add_requested(
    session: Session,
    repository: Repository,
    digest: str,
    label: tuple[str, str, str | None],
    *,
    auth: AuthContext,
    ip: str | None,
) -> ManifestLabel:
    """addManifestLabel: a (key, value, media type) label on a manifest the API may show."""
    key, value, media_type = label
    if has_reserved_prefix(key):
        raise LabelError("Label has a reserved prefix")
    manifest = reachable_manifest(session, repository, digest)
    added = add_label(session, manifest, key, value, media_type)
    _log_label(
        session,
        "manifest_label_add",
        repository,
        added,
        digest,
        auth,
        ip,
        media_type=added.media_type,
    )
    return added


def delete_requested(
    session: Session,
    repository: Repository,
    digest: str,
    label_id: str,
    *,
    auth: AuthContext,
    ip: str | None,
) -> None:
    """deleteManifestLabel: labels the manifest itself carries cannot be deleted."""
    label = find_label(session, reachable_manifest(session, repository, digest), label_id)
    if label is None:
        raise NotFound()
    if not is_mutable(label):
        raise LabelError("Cannot delete immutable label")
    _log_label(session, "manifest_label_delete", repository, label, digest, auth, ip)
    session.delete(label)


def _config_labels(config: dict[str, Any]) -> dict[str, Any]:
    container = config.get("config")
    found = container.get("Labels") if isinstance(container, dict) else None
    return found if isinstance(found, dict) else {}


def _storable_label(key: Any, value: Any) -> bool:
    """Labels from content are kept however they are named (as Quay keeps them), but an empty
    key means nothing and text with NUL or over the column's size cannot be stored."""
    return (
        isinstance(key, str)
        and isinstance(value, str)
        and 0 < len(key) <= LABEL_KEY_MAX
        and "\x00" not in key
        and "\x00" not in value
    )


def content_labels(store: BlobStore, parsed: ParsedManifest) -> dict[str, str]:
    """The labels Quay derives from a pushed manifest: an image's config `Labels`, overlaid by
    an OCI manifest's annotations; for an OCI artifact, its annotations alone."""
    if parsed.is_index or parsed.config is None:
        return {}
    found: dict[str, Any] = {}
    if parsed.config.media_type in IMAGE_CONFIG_TYPES:
        found.update(_config_labels(_read_config(store, parsed.config.digest)))
    if parsed.media_type == OCI_MANIFEST:
        found.update(parsed.annotations or {})
    return {key: value for key, value in found.items() if _storable_label(key, value)}
