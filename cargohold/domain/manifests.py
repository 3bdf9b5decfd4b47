"""Manifests: parsing and validating every accepted format, storing them with their references.

Accepted: Docker schema 2 manifests and manifest lists, OCI image manifests and indexes,
including OCI 1.1 artifacts (`artifactType`, any config media type, `subject`). Docker schema 1
is refused. A manifest may only refer to blobs its repository may serve and to child manifests
stored in the same repository.

A stored manifest is *reachable* while an alive tag (visible or hidden) points at it, or at an
index that lists it; only reachable manifests are served by digest.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Insert, Select, and_, bindparam, exists, func, insert, or_, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import BindParameter

from cargohold.db.base import begin_write, insert_unless_present, is_postgres, utcnow
from cargohold.db.models.registry import (
    Blob,
    Manifest,
    ManifestBlob,
    ManifestChild,
    ManifestLabel,
    Repository,
    Tag,
)
from cargohold.domain import blobs, repositories, untrusted_json
from cargohold.domain.errors import Invalid, NotFound
from cargohold.domain.repositories import RepositoryRef

DOCKER_SCHEMA1 = "application/vnd.docker.distribution.manifest.v1+json"
DOCKER_SCHEMA1_SIGNED = "application/vnd.docker.distribution.manifest.v1+prettyjws"
DOCKER_SCHEMA2 = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_IMAGE_CONFIG = "application/vnd.oci.image.config.v1+json"

IMAGE_TYPES = frozenset({DOCKER_SCHEMA2, OCI_MANIFEST})
INDEX_TYPES = frozenset({DOCKER_LIST, OCI_INDEX})
SUPPORTED_TYPES = IMAGE_TYPES | INDEX_TYPES
SCHEMA1_TYPES = frozenset({DOCKER_SCHEMA1, DOCKER_SCHEMA1_SIGNED})
MAX_MANIFEST_BYTES = 4 * 1024 * 1024
# Descriptor sizes are int64 in the OCI spec, and an image's total is kept in a 64-bit column.
MAX_CONTENT_SIZE = 2**63 - 1

_MEDIA_TYPE_RE = re.compile(
    r"^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}$"
)


class ManifestError(Invalid):
    """A manifest was refused; the message is safe to show. `extra` is the registry's detail."""

    @property
    def detail(self) -> dict[str, Any]:
        return self.extra


class ManifestInvalid(ManifestError):
    """The manifest breaks the format's rules."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        # `message` cannot be a keyword of DomainError's extra fields.
        self.extra["message"] = message


class ManifestUnsupported(ManifestError):
    """A schema this registry does not store (schema 1, unknown media types)."""

    def __init__(self, reason: str) -> None:
        super().__init__("manifest invalid")
        self.extra["message"] = reason


class ManifestUnknown(NotFound):
    """No manifest (or live tag) by that reference; `extra` names the reference."""


class ManifestBlobUnknown(ManifestError):
    """The manifest names a blob or child manifest the repository does not have."""


@dataclass(frozen=True)
class Descriptor:
    media_type: str
    digest: str
    size: int
    has_urls: bool = False


@dataclass
class ParsedManifest:
    media_type: str
    digest: str
    raw: bytes
    config: Descriptor | None = None
    layers: list[Descriptor] = field(default_factory=list)
    children: list[Descriptor] = field(default_factory=list)
    subject: Descriptor | None = None
    artifact_type: str | None = None
    annotations: dict[str, str] | None = None

    @property
    def is_index(self) -> bool:
        return self.media_type in INDEX_TYPES

    @property
    def blob_descriptors(self) -> list[Descriptor]:
        """Blobs that must exist in the repository (foreign layers with URLs excepted)."""
        found = [self.config] if self.config is not None else []
        found.extend(layer for layer in self.layers if not layer.has_urls)
        return found

    @property
    def referrer_artifact_type(self) -> str | None:
        """The artifactType a referrers listing reports: explicit, else the config's type."""
        if self.artifact_type:
            return self.artifact_type
        if self.config is not None:
            return self.config.media_type
        return None


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def digest_of(data: bytes, algorithm: str) -> str:
    return f"{algorithm}:{hashlib.new(algorithm, data).hexdigest()}"


def _invalid(message: str) -> ManifestError:
    return ManifestInvalid(message)


def _descriptor(value: Any, where: str) -> Descriptor:
    if not isinstance(value, dict):
        raise _invalid(f"{where} must be a descriptor object")
    media_type = value.get("mediaType")
    digest = value.get("digest")
    size = value.get("size")
    if not isinstance(media_type, str) or not _MEDIA_TYPE_RE.match(media_type):
        raise _invalid(f"{where} has an invalid mediaType")
    if not isinstance(digest, str) or not blobs.DIGEST_GRAMMAR_RE.match(digest):
        raise _invalid(f"{where} has an invalid digest")
    if not isinstance(size, int) or isinstance(size, bool) or not 0 <= size <= MAX_CONTENT_SIZE:
        raise _invalid(f"{where} has an invalid size")
    urls = value.get("urls")
    if urls is not None and not (isinstance(urls, list) and all(isinstance(u, str) for u in urls)):
        raise _invalid(f"{where} has invalid urls")
    return Descriptor(media_type, digest, size, bool(urls))


def _annotations(document: dict[str, Any]) -> dict[str, str] | None:
    value = document.get("annotations")
    if value is None:
        return None
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise _invalid("annotations must map strings to strings")
    return value


def _resolve_media_type(content_type: str | None, document: dict[str, Any]) -> str:
    declared = document.get("mediaType")
    if declared is not None and not isinstance(declared, str):
        raise _invalid("mediaType must be a string")
    header = (content_type or "").split(";", 1)[0].strip().lower()
    if header in ("", "application/json"):
        if document.get("schemaVersion") == 1:
            return DOCKER_SCHEMA1
        if declared:
            return declared
        # An OCI manifest may leave out mediaType; tell image from index by shape.
        return OCI_INDEX if "manifests" in document else OCI_MANIFEST
    if header not in SUPPORTED_TYPES:
        return header
    if declared and declared != header:
        raise _invalid(f"mediaType {declared} does not match Content-Type {header}")
    return header


def parse_manifest(
    raw: bytes, content_type: str | None, *, digest: str | None = None
) -> ParsedManifest:
    """Parse and validate a manifest body. `digest` is the digest to name it by (sha256 default)."""
    if len(raw) > MAX_MANIFEST_BYTES:
        raise _invalid("manifest is too large")
    try:
        document = untrusted_json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise _invalid("manifest is not valid JSON") from exc
    if not isinstance(document, dict):
        raise _invalid("manifest must be a JSON object")
    media_type = _resolve_media_type(content_type, document)
    if media_type in SCHEMA1_TYPES or document.get("schemaVersion") == 1:
        raise ManifestUnsupported("manifest schema version not supported")
    if media_type not in SUPPORTED_TYPES:
        raise ManifestUnsupported("manifest schema version not supported")
    if document.get("schemaVersion") != 2:
        raise _invalid("schemaVersion must be 2")
    parsed = ParsedManifest(
        media_type=media_type,
        digest=digest or sha256_digest(raw),
        raw=raw,
        annotations=_annotations(document),
    )
    artifact_type = document.get("artifactType")
    if artifact_type is not None:
        if not isinstance(artifact_type, str) or not _MEDIA_TYPE_RE.match(artifact_type):
            raise _invalid("artifactType must be a media type")
        parsed.artifact_type = artifact_type
    if document.get("subject") is not None:
        parsed.subject = _descriptor(document["subject"], "subject")
    if media_type in IMAGE_TYPES:
        if "config" not in document:
            raise _invalid("manifest has no config")
        parsed.config = _descriptor(document["config"], "config")
        layers = document.get("layers", [])
        if not isinstance(layers, list):
            raise _invalid("layers must be a list")
        parsed.layers = [_descriptor(layer, f"layers[{i}]") for i, layer in enumerate(layers)]
        if parsed.config.size + sum(layer.size for layer in parsed.layers) > MAX_CONTENT_SIZE:
            raise _invalid("the image is larger than a 64-bit size")
    else:
        children = document.get("manifests")
        if not isinstance(children, list):
            raise _invalid("manifests must be a list")
        parsed.children = [
            _descriptor(child, f"manifests[{i}]") for i, child in enumerate(children)
        ]
    return parsed


def alive_tag_exists(manifest_id_column, now_ms: int | BindParameter[int]):
    """SQL: an alive tag (visible or hidden) points at the manifest."""
    return exists().where(
        Tag.manifest_id == manifest_id_column,
        or_(Tag.lifetime_end_ms.is_(None), Tag.lifetime_end_ms > now_ms),
    )


def _reachable(now_ms: int | BindParameter[int]):
    parent_alive = exists().where(
        ManifestChild.child_manifest_id == Manifest.id,
        alive_tag_exists(ManifestChild.manifest_id, now_ms),
    )
    return or_(alive_tag_exists(Manifest.id, now_ms), parent_alive)


def get_manifest(session: Session, repository_id: int, digest: str) -> Manifest | None:
    """A stored manifest, reachable or not (restore and the tag API need dead ones too)."""
    return session.scalar(
        select(Manifest).where(Manifest.repository_id == repository_id, Manifest.digest == digest)
    )


def get_reachable_manifest(
    session: Session, repository_id: int, digest: str, now_ms: int
) -> Manifest | None:
    """A manifest the registry serves by digest."""
    return session.scalar(
        select(Manifest).where(
            Manifest.repository_id == repository_id,
            Manifest.digest == digest,
            _reachable(now_ms),
        )
    )


@dataclass(frozen=True)
class PulledManifest:
    """What a pull by digest needs, fetched in one query."""

    digest: str
    media_type: str
    manifest_bytes: bytes


@functools.cache
def _pull_by_digest_statement() -> Select:
    # Built once (a pull's setup cost more than its query); the values are bound per call.
    return repositories.repository_joined_statement(
        Manifest,
        and_(
            Manifest.repository_id == Repository.id,
            Manifest.digest == bindparam("digest"),
            _reachable(bindparam("now")),
        ),
        Manifest.digest,
        Manifest.media_type,
        Manifest.manifest_bytes,
    )


def pull_by_digest(
    session: Session, namespace_name: str, repository_name: str, digest: str, now_ms: int
) -> tuple[RepositoryRef | None, PulledManifest | None]:
    """The repository and its reachable manifest `digest`, in one query."""
    row = session.execute(
        _pull_by_digest_statement(),
        {
            "namespace": namespace_name,
            "repository": repository_name,
            "digest": digest,
            "now": now_ms,
        },
    ).first()
    ref, manifest = repositories.split_joined_row(row)
    return ref, None if manifest is None else PulledManifest(*manifest)


def label_media_type(value: str) -> str:
    """A label's media type: JSON objects and arrays are application/json, the rest text."""
    stripped = value.strip()
    if (stripped.startswith("{") and stripped.endswith("}")) or (
        stripped.startswith("[") and stripped.endswith("]")
    ):
        try:
            json.loads(stripped)
            return "application/json"
        except ValueError:
            pass
    return "text/plain"


@dataclass(frozen=True)
class StoredManifest:
    id: int
    digest: str
    # The blobs a manifest stored by this call refers to; empty when it was stored before,
    # so that nothing the quota totals count has changed.
    new_blob_ids: frozenset[int]


def _manifest_row(repository_id: int, parsed: ParsedManifest) -> dict[str, Any]:
    return {
        "repository_id": repository_id,
        "digest": parsed.digest,
        "media_type": parsed.media_type,
        "manifest_bytes": parsed.raw,
        "config_media_type": parsed.config.media_type if parsed.config is not None else None,
        "artifact_type": parsed.referrer_artifact_type,
        "subject_digest": parsed.subject.digest if parsed.subject is not None else None,
        # Quay's tag `size`: the layers only, without the config blob or the manifest itself.
        "layers_compressed_size": None
        if parsed.is_index
        else sum(layer.size for layer in parsed.layers),
        "annotations_json": json.dumps(parsed.annotations) if parsed.annotations else None,
        "created": utcnow(),
    }


@functools.cache
def _insert_manifest_statement(postgres: bool) -> Insert:
    # Built once; the row's values (_manifest_row) are bound when it runs.
    return insert_unless_present(postgres, Manifest).returning(Manifest.id)


def _check_blobs(wanted: list[Descriptor], found: dict[str, Blob]) -> None:
    for descriptor in wanted:
        blob = found.get(descriptor.digest)
        if blob is None:
            raise ManifestBlobUnknown("blob unknown to registry", digest=descriptor.digest)
        if blob.size != descriptor.size:
            raise _invalid(
                f"size of {descriptor.digest} is {blob.size}, manifest says {descriptor.size}"
            )


def _child_ids(session: Session, repository_id: int, parsed: ParsedManifest) -> set[int]:
    if not parsed.children:
        return set()
    child_ids = dict(
        session.execute(
            select(Manifest.digest, Manifest.id).where(
                Manifest.repository_id == repository_id,
                Manifest.digest.in_({child.digest for child in parsed.children}),
            )
        ).all()
    )
    for child in parsed.children:
        if child.digest not in child_ids:
            raise ManifestBlobUnknown("manifest blob unknown to registry", digest=child.digest)
    return set(child_ids.values())


def _insert_references(
    session: Session,
    repository_id: int,
    manifest_id: int,
    blob_ids: set[int],
    child_ids: set[int],
    labels: dict[str, str],
) -> None:
    """The new manifest's rows, one multi-row INSERT per table (no ids needed back)."""
    if blob_ids:
        session.execute(
            insert(ManifestBlob.__table__),
            [
                {"repository_id": repository_id, "manifest_id": manifest_id, "blob_id": blob_id}
                for blob_id in sorted(blob_ids)
            ],
        )
    if child_ids:
        session.execute(
            insert(ManifestChild.__table__),
            [
                {
                    "repository_id": repository_id,
                    "manifest_id": manifest_id,
                    "child_manifest_id": child_id,
                }
                for child_id in sorted(child_ids)
            ],
        )
    if labels:
        session.execute(
            insert(ManifestLabel.__table__),
            [
                {
                    "repository_id": repository_id,
                    "manifest_id": manifest_id,
                    "key": key,
                    "value": value,
                    "media_type": label_media_type(value),
                    "source_type": "manifest",
                }
                for key, value in labels.items()
            ],
        )


def store_manifest(
    session: Session,
    repository_id: int,
    parsed: ParsedManifest,
    labels: dict[str, str] | None = None,
) -> StoredManifest:
    """Store a validated manifest with its blob and child references (idempotent by digest).
    A newly stored manifest gets `labels` (derived from its content) as `manifest` labels.

    Raises ManifestBlobUnknown naming the first referenced blob or child the
    repository does not have. The caller commits.
    """
    begin_write(session)
    wanted = parsed.blob_descriptors
    digests = [d.digest for d in wanted]
    blobs.mark_referenced(session, repository_id, digests)
    found = blobs.repository_blobs(session, repository_id, digests, hold_links=True)
    _check_blobs(wanted, found)
    child_ids = _child_ids(session, repository_id, parsed)
    blob_ids = {blob.id for blob in found.values()}
    # A concurrent push of the same digest that committed first makes this insert a no-op.
    manifest_id = session.scalar(
        _insert_manifest_statement(is_postgres(session)), _manifest_row(repository_id, parsed)
    )
    new_blob_ids: frozenset[int] = frozenset()
    if manifest_id is None:
        manifest_id = session.execute(
            select(Manifest.id).where(
                Manifest.repository_id == repository_id, Manifest.digest == parsed.digest
            )
        ).scalar_one()
    else:
        _insert_references(session, repository_id, manifest_id, blob_ids, child_ids, labels or {})
        new_blob_ids = frozenset(blob_ids)
    return StoredManifest(manifest_id, parsed.digest, new_blob_ids)


@dataclass(frozen=True)
class Referrer:
    media_type: str
    digest: str
    size: int
    artifact_type: str | None
    annotations: dict[str, str] | None

    def descriptor(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "mediaType": self.media_type,
            "digest": self.digest,
            "size": self.size,
        }
        if self.artifact_type:
            out["artifactType"] = self.artifact_type
        if self.annotations:
            out["annotations"] = self.annotations
        return out


def list_referrers(
    session: Session,
    repository_id: int,
    subject_digest: str,
    now_ms: int,
    artifact_type: str | None = None,
) -> list[Referrer]:
    """Reachable manifests whose subject is `subject_digest`, oldest first."""
    query = select(
        Manifest.media_type,
        Manifest.digest,
        func.length(Manifest.manifest_bytes),
        Manifest.artifact_type,
        Manifest.annotations_json,
    ).where(
        Manifest.repository_id == repository_id,
        Manifest.subject_digest == subject_digest,
        _reachable(now_ms),
    )
    if artifact_type is not None:
        if "\x00" in artifact_type:
            # No media type holds a NUL (and PostgreSQL cannot even compare one): no match.
            return []
        query = query.where(Manifest.artifact_type == artifact_type)
    rows = session.execute(query.order_by(Manifest.id)).all()
    return [
        Referrer(
            media_type=media_type,
            digest=digest,
            size=size,
            artifact_type=kind,
            annotations=json.loads(annotations) if annotations else None,
        )
        for media_type, digest, size, kind, annotations in rows
    ]
