"""Registry test helpers: tokens through /v2/auth, robots and app tokens in the DB, image layouts."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import secrets
import tarfile
from dataclasses import dataclass
from pathlib import Path

import httpx

from cargohold.auth.secrets import APP_TOKEN_PREFIX_LENGTH, SecretBox, hash_token, random_code
from cargohold.db.models.accounts import AppSpecificToken, RobotAccountToken, User
from cargohold.db.models.registry import RepositoryPermission, Role
from cargohold.domain import repositories
from tests.support.server import LiveServer

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_EMPTY = "application/vnd.oci.empty.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def get_token(server: LiveServer, auth: tuple[str, str] | None, *scopes: str) -> httpx.Response:
    params = [("service", server.host), *[("scope", scope) for scope in scopes]]
    return httpx.get(f"{server.url}/v2/auth", params=params, auth=auth, timeout=30)


def token_for(server: LiveServer, auth: tuple[str, str] | None, *scopes: str) -> str:
    response = get_token(server, auth, *scopes)
    assert response.status_code == 200, response.text
    return response.json()["token"]


def v2_client(server: LiveServer, token: str | None = None) -> httpx.Client:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    # Blob GETs may redirect to storage (presigned S3 URLs); httpx drops the token there.
    return httpx.Client(base_url=server.url, headers=headers, timeout=60, follow_redirects=True)


def pull_push(repo: str) -> str:
    return f"repository:{repo}:pull,push"


def create_robot(server: LiveServer, owner: str, short: str, grants: dict[str, Role]) -> str:
    """A robot `owner+short` with a token and repository roles; returns the token."""
    token = random_code(64)
    box = SecretBox(server.settings.DATABASE_SECRET_KEY)
    with server.db() as session:
        robot = User(username=f"{owner}+{short}", robot=True, email=None, verified=True)
        session.add(robot)
        session.flush()
        session.add(
            RobotAccountToken(
                robot_id=robot.id, token_hash=hash_token(token), token_encrypted=box.encrypt(token)
            )
        )
        for path, role in grants.items():
            namespace, name = path.split("/", 1)
            repo = repositories.find_repository(session, namespace, name)
            session.add(RepositoryPermission(repository_id=repo.id, user_id=robot.id, role=role))
    return token


def create_app_token(server: LiveServer, username: str) -> str:
    prefix = random_code(APP_TOKEN_PREFIX_LENGTH)
    secret = random_code(APP_TOKEN_PREFIX_LENGTH)
    box = SecretBox(server.settings.DATABASE_SECRET_KEY)
    with server.db() as session:
        user = session.query(User).filter_by(username=username).one()
        session.add(
            AppSpecificToken(
                user_id=user.id,
                title="registry test",
                token_name=prefix,
                token_secret_hash=hash_token(secret),
                token_secret_encrypted=box.encrypt(secret),
            )
        )
    return prefix + secret


def make_repository(server: LiveServer, namespace: str, name: str, *, public: bool) -> str:
    with server.db() as session:
        owner = session.query(User).filter_by(username=namespace).one()
        repositories.create_repository(
            session,
            owner,
            name,
            public=public,
            description=None,
            creator=None if owner.organization else owner,
        )
    return f"{namespace}/{name}"


def tar_layer(files: dict[str, bytes], *, modes: dict[str, int] | None = None) -> bytes:
    """A gzipped tar holding `files` (paths relative to /)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as archive:
        for name, data in sorted(files.items()):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = (modes or {}).get(name, 0o644)
            archive.addfile(info, io.BytesIO(data))
    return gzip.compress(raw.getvalue(), mtime=0)


@dataclass
class Blob:
    data: bytes
    media_type: str

    @property
    def digest(self) -> str:
        return sha256(self.data)

    def descriptor(self) -> dict:
        return {"mediaType": self.media_type, "digest": self.digest, "size": len(self.data)}


@dataclass
class Image:
    config: Blob
    layers: list[Blob]
    manifest: bytes
    media_type: str

    @property
    def digest(self) -> str:
        return sha256(self.manifest)

    @property
    def blobs(self) -> list[Blob]:
        return [self.config, *self.layers]


def make_image(
    files: dict[str, bytes] | None = None,
    *,
    arch: str = "amd64",
    docker: bool = False,
    modes: dict[str, int] | None = None,
    labels: dict[str, str] | None = None,
    annotations: dict[str, str] | None = None,
    history: list[dict] | None = None,
) -> Image:
    layer = Blob(
        tar_layer(files or {"hello.txt": secrets.token_hex(8).encode()}, modes=modes),
        DOCKER_LAYER if docker else OCI_LAYER,
    )
    diff_id = sha256(gzip.decompress(layer.data))
    config = Blob(
        json.dumps(
            {
                "architecture": arch,
                "os": "linux",
                "config": {"Cmd": ["/hello"], **({"Labels": labels} if labels else {})},
                "rootfs": {"type": "layers", "diff_ids": [diff_id]},
                **({"history": history} if history else {}),
            }
        ).encode(),
        DOCKER_CONFIG if docker else OCI_CONFIG,
    )
    media_type = DOCKER_MANIFEST if docker else OCI_MANIFEST
    document = {
        "schemaVersion": 2,
        "mediaType": media_type,
        "config": config.descriptor(),
        "layers": [layer.descriptor()],
    }
    if annotations:
        document["annotations"] = annotations
    manifest = json.dumps(document).encode()
    return Image(config, [layer], manifest, media_type)


def make_index(images: list[Image]) -> bytes:
    return json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [
                {
                    "mediaType": image.media_type,
                    "digest": image.digest,
                    "size": len(image.manifest),
                    "platform": {
                        "architecture": json.loads(image.config.data)["architecture"],
                        "os": "linux",
                    },
                }
                for image in images
            ],
        }
    ).encode()


def write_oci_layout(root: Path, images: dict[str, Image], index: bytes | None = None) -> Path:
    """An OCI image layout on disk; with `index`, the single tag "latest" names it."""
    blobs = root / "blobs" / "sha256"
    blobs.mkdir(parents=True, exist_ok=True)

    def put(data: bytes) -> None:
        (blobs / sha256(data).split(":", 1)[1]).write_bytes(data)

    entries = []
    for tag, image in images.items():
        for blob in image.blobs:
            put(blob.data)
        put(image.manifest)
        if index is None:
            entries.append(
                {
                    "mediaType": image.media_type,
                    "digest": image.digest,
                    "size": len(image.manifest),
                    "annotations": {"org.opencontainers.image.ref.name": tag},
                }
            )
    if index is not None:
        put(index)
        entries.append(
            {
                "mediaType": OCI_INDEX,
                "digest": sha256(index),
                "size": len(index),
                "annotations": {"org.opencontainers.image.ref.name": "latest"},
            }
        )
    (root / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    (root / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": entries}))
    return root


def push_blob(client: httpx.Client, repo: str, data: bytes) -> str:
    digest = sha256(data)
    response = client.post(f"/v2/{repo}/blobs/uploads/", params={"digest": digest}, content=data)
    assert response.status_code == 201, response.text
    return digest


def push_image(client: httpx.Client, repo: str, image: Image, reference: str) -> httpx.Response:
    for blob in image.blobs:
        push_blob(client, repo, blob.data)
    return client.put(
        f"/v2/{repo}/manifests/{reference}",
        content=image.manifest,
        headers={"Content-Type": image.media_type},
    )
