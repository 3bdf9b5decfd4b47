"""GC tests drive the registry's own domain layer against a live server's database and storage."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from cargohold.db.base import make_engine, make_session_factory, utcnow
from cargohold.db.models.accounts import User
from cargohold.db.models.registry import Blob, Manifest, Repository, RepositoryBlob
from cargohold.domain import gc, manifests, repositories, tags, uploads
from cargohold.storage.base import BlobStore
from tests.support.accounts import TestUser, create_user
from tests.support.server import LiveServer

OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass
class Image:
    repository: str
    tag: str | None
    digest: str
    blobs: dict[str, bytes]


class Registry:
    """Pushes through domain.uploads/manifests/tags exactly as the /v2 endpoints do."""

    def __init__(self, server: LiveServer, owner: TestUser) -> None:
        self.server = server
        self.settings = server.settings
        self.engine = make_engine(self.settings.DB_URI, self.settings.DB_CONNECTION_ARGS)
        self.sessions: sessionmaker[Session] = make_session_factory(self.engine)
        self.store: BlobStore = server.store()
        self.owner = owner

    def namespace(self, session: Session) -> User:
        return session.scalar(select(User).where(User.username == self.owner.username))

    def repository(self, session: Session, name: str) -> Repository:
        namespace = self.namespace(session)
        return repositories.find_or_create_repository(
            session, namespace, name, public=False, creator=namespace
        )

    def push_blob(self, repository: str, data: bytes, chunk: int = 4096) -> str:
        with self.sessions() as session:
            repo = self.repository(session, repository)
            upload = uploads.start_upload(session, self.store, repo.id)
            session.commit()
            appender = uploads.open_appender(session, self.store, repo.id, upload.uuid, None)
            for start in range(0, len(data), chunk):
                appender.write(data[start : start + chunk])
            uploads.record_progress(session, appender, appender.finish())
            session.commit()
            appender.release()
            uploads.complete_upload(session, self.store, repo.id, upload.uuid, sha256(data))
            session.commit()
        return sha256(data)

    def push_image(self, repository: str, tag: str | None, layers: list[bytes]) -> Image:
        config = json.dumps({"architecture": "amd64", "os": "linux", "layers": len(layers)})
        config_bytes = config.encode() + sha256(b"".join(layers)).encode()
        contents = {sha256(blob): blob for blob in [config_bytes, *layers]}
        for blob in contents.values():
            self.push_blob(repository, blob)
        raw = self.manifest_bytes(config_bytes, layers)
        return self.put_manifest(repository, tag, raw, contents)

    @staticmethod
    def manifest_bytes(config: bytes, layers: list[bytes], subject: str | None = None) -> bytes:
        document = {
            "schemaVersion": 2,
            "mediaType": manifests.OCI_MANIFEST,
            "config": {
                "mediaType": manifests.OCI_IMAGE_CONFIG,
                "digest": sha256(config),
                "size": len(config),
            },
            "layers": [
                {"mediaType": OCI_LAYER, "digest": sha256(layer), "size": len(layer)}
                for layer in layers
            ],
        }
        if subject is not None:
            document["subject"] = {
                "mediaType": manifests.OCI_MANIFEST,
                "digest": subject,
                "size": 1,
            }
        return json.dumps(document).encode()

    def put_manifest(
        self, repository: str, tag: str | None, raw: bytes, contents: dict[str, bytes]
    ) -> Image:
        parsed = manifests.parse_manifest(raw, None)
        with self.sessions() as session:
            repo = self.repository(session, repository)
            manifest = manifests.store_manifest(session, repo.id, parsed)
            if tag is None:
                tags.create_temp_tag(session, repo.id, manifest.id, None)
            else:
                tags.set_tag(session, repo.id, tag, manifest.id)
            session.commit()
        return Image(repository, tag, parsed.digest, contents)

    def delete_tag(self, repository: str, tag: str) -> None:
        with self.sessions() as session:
            repo = self.repository(session, repository)
            assert tags.delete_tag(session, repo.id, tag) is not None
            session.commit()

    def set_window(self, seconds: int) -> None:
        with self.sessions() as session:
            self.namespace(session).tag_expiration_s = seconds
            session.commit()

    def gc(self, *, after: dt.timedelta = dt.timedelta(0), **options) -> gc.GcReport:
        with self.sessions() as session:
            namespace_id = self.namespace(session).id
        return gc.run_pass(
            self.sessions,
            self.store,
            self.settings,
            now=utcnow() + after,
            namespace_id=namespace_id,
            **options,
        )

    def stored(self, digest: str) -> bool:
        return self.store.blob_size(digest) is not None

    def blob_row(self, digest: str) -> bool:
        with self.sessions() as session:
            return session.scalar(select(Blob.id).where(Blob.digest == digest)) is not None

    def manifest_row(self, repository: str, digest: str) -> bool:
        with self.sessions() as session:
            repo = self.repository(session, repository)
            return (
                session.scalar(
                    select(Manifest.id).where(
                        Manifest.repository_id == repo.id, Manifest.digest == digest
                    )
                )
                is not None
            )

    def links(self, repository: str) -> set[str]:
        with self.sessions() as session:
            repo = self.repository(session, repository)
            return set(
                session.scalars(
                    select(Blob.digest)
                    .join(RepositoryBlob, RepositoryBlob.blob_id == Blob.id)
                    .where(RepositoryBlob.repository_id == repo.id)
                )
            )

    def pull(self, image: Image) -> None:
        """Every blob of the image is served by its repository, byte for byte."""
        assert self.manifest_row(image.repository, image.digest)
        assert set(image.blobs) <= self.links(image.repository)
        for digest, data in image.blobs.items():
            assert b"".join(self.store.read_blob(digest)) == data

    def close(self) -> None:
        self.engine.dispose()


@pytest.fixture
def registry(server: LiveServer) -> Iterator[Registry]:
    owner = create_user(server)
    helper = Registry(server, owner)
    yield helper
    helper.close()
