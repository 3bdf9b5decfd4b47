"""Real clients against the live server: skopeo, podman, buildah and the oras Python client."""

from __future__ import annotations

import gzip
import io
import json
import os
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.accounts import TestUser, unique
from tests.support.registry import (
    DOCKER_MANIFEST,
    OCI_INDEX,
    OCI_MANIFEST,
    make_image,
    make_index,
    pull_push,
    sha256,
    token_for,
    v2_client,
    write_oci_layout,
)
from tests.support.server import LiveServer

pytestmark = pytest.mark.slow
BUSYBOX = Path("/bin/busybox")


def run(*args: str, cwd: Path | None = None, timeout: int = 300) -> str:
    result = subprocess.run(args, capture_output=True, text=True, cwd=cwd, timeout=timeout)
    assert result.returncode == 0, f"{' '.join(args)}\n{result.stdout}\n{result.stderr}"
    return result.stdout


def creds(user: TestUser) -> str:
    return f"{user.username}:{user.password}"


def skopeo_copy(src: str, dest: str, user: TestUser, *extra: str) -> None:
    run(
        "skopeo",
        "copy",
        "--src-tls-verify=false",
        "--dest-tls-verify=false",
        f"--src-creds={creds(user)}",
        f"--dest-creds={creds(user)}",
        *extra,
        src,
        dest,
    )


def raw_manifest(server: LiveServer, user: TestUser, reference: str) -> bytes:
    out = subprocess.run(
        [
            "skopeo",
            "inspect",
            "--raw",
            "--tls-verify=false",
            f"--creds={creds(user)}",
            f"docker://{server.host}/{reference}",
        ],
        capture_output=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    return out.stdout


@pytest.fixture(scope="session")
def layouts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("layouts")
    single = make_image({"hello.txt": b"hello from cargohold\n"})
    arches = [make_image({"arch.txt": arch.encode()}, arch=arch) for arch in ("amd64", "arm64")]
    return {
        "single": write_oci_layout(root / "single", {"latest": single}),
        "multi": write_oci_layout(
            root / "multi", {image.digest: image for image in arches}, make_index(arches)
        ),
    }


def test_skopeo_oci_round_trip(server, owner, layouts, tmp_path):
    repo = f"{owner.username}/{unique('oci')}"
    skopeo_copy(f"oci:{layouts['single']}:latest", f"docker://{server.host}/{repo}:v1", owner)
    stored = raw_manifest(server, owner, f"{repo}:v1")
    assert json.loads(stored)["mediaType"] == OCI_MANIFEST
    original = json.loads((layouts["single"] / "index.json").read_text())["manifests"][0]
    assert sha256(stored) == original["digest"]
    skopeo_copy(f"docker://{server.host}/{repo}:v1", f"oci:{tmp_path / 'back'}:v1", owner)
    back = json.loads((tmp_path / "back" / "index.json").read_text())["manifests"][0]
    assert back["digest"] == original["digest"]


def test_skopeo_docker_v2s2_round_trip(server, owner, layouts, tmp_path):
    repo = f"{owner.username}/{unique('docker')}"
    skopeo_copy(
        f"oci:{layouts['single']}:latest",
        f"docker://{server.host}/{repo}:v2s2",
        owner,
        "--format",
        "v2s2",
    )
    stored = json.loads(raw_manifest(server, owner, f"{repo}:v2s2"))
    assert stored["mediaType"] == DOCKER_MANIFEST
    skopeo_copy(f"docker://{server.host}/{repo}:v2s2", f"dir:{tmp_path / 'dir'}", owner)
    layer = tmp_path / "dir" / stored["layers"][0]["digest"].split(":", 1)[1]
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(layer.read_bytes()))) as archive:
        assert archive.extractfile("hello.txt").read() == b"hello from cargohold\n"


def test_skopeo_multi_arch_index_with_all(server, owner, layouts, tmp_path):
    repo = f"{owner.username}/{unique('multi')}"
    skopeo_copy(
        f"oci:{layouts['multi']}:latest", f"docker://{server.host}/{repo}:multi", owner, "--all"
    )
    index = json.loads(raw_manifest(server, owner, f"{repo}:multi"))
    assert index["mediaType"] == OCI_INDEX
    assert {m["platform"]["architecture"] for m in index["manifests"]} == {"amd64", "arm64"}
    skopeo_copy(
        f"docker://{server.host}/{repo}:multi", f"oci:{tmp_path / 'all'}:multi", owner, "--all"
    )
    for child in index["manifests"]:
        blob = tmp_path / "all" / "blobs" / "sha256" / child["digest"].split(":", 1)[1]
        assert sha256(blob.read_bytes()) == child["digest"]


@pytest.fixture
def storage() -> Iterator[list[str]]:
    """Private container storage for podman/buildah (runroot paths must be short)."""
    root = Path(tempfile.mkdtemp(prefix="ch-", dir="/tmp"))
    yield ["--root", str(root / "r"), "--runroot", str(root / "rr"), "--storage-driver", "vfs"]
    shutil.rmtree(root, ignore_errors=True)


def test_podman_pull(server, owner, layouts, storage):
    repo = f"{owner.username}/{unique('podman')}"
    skopeo_copy(f"oci:{layouts['single']}:latest", f"docker://{server.host}/{repo}:latest", owner)
    run(
        "podman",
        *storage,
        "pull",
        "--tls-verify=false",
        f"--creds={creds(owner)}",
        f"{server.host}/{repo}:latest",
    )
    digest = run(
        "podman", *storage, "image", "inspect", "--format", "{{.Digest}}", f"{server.host}/{repo}"
    ).strip()
    original = json.loads((layouts["single"] / "index.json").read_text())["manifests"][0]
    assert digest == original["digest"]


def _busybox_layout(root: Path) -> Path:
    """A base image holding Debian's static busybox as /bin/busybox and /bin/sh."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as archive:
        for directory in ("bin", "tmp", "etc"):
            info = tarfile.TarInfo(directory)
            info.type = tarfile.DIRTYPE
            info.mode = 0o1777 if directory == "tmp" else 0o755
            archive.addfile(info)
        data = BUSYBOX.read_bytes()
        info = tarfile.TarInfo("bin/busybox")
        info.size = len(data)
        info.mode = 0o755
        archive.addfile(info, io.BytesIO(data))
        for applet in ("sh", "echo", "cat", "mkdir"):
            link = tarfile.TarInfo(f"bin/{applet}")
            link.type = tarfile.SYMTYPE
            link.linkname = "busybox"
            archive.addfile(link)
    layer = gzip.compress(raw.getvalue(), mtime=0)
    image = make_image()
    image.layers[0].data = layer
    config = json.loads(image.config.data)
    config["rootfs"]["diff_ids"] = [sha256(raw.getvalue())]
    config["config"] = {"Cmd": ["/bin/sh"], "Env": ["PATH=/bin"]}
    image.config.data = json.dumps(config).encode()
    image.manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": image.config.descriptor(),
            "layers": [image.layers[0].descriptor()],
        }
    ).encode()
    return write_oci_layout(root, {"latest": image})


@pytest.mark.skipif(not BUSYBOX.exists(), reason="busybox-static is not installed")
def test_buildah_bud_with_run_steps_and_push(server, owner, tmp_path, storage):
    base = f"{owner.username}/{unique('busybox')}"
    skopeo_copy(
        f"oci:{_busybox_layout(tmp_path / 'base')}:latest",
        f"docker://{server.host}/{base}:latest",
        owner,
    )
    context = tmp_path / "context"
    context.mkdir()
    (context / "Dockerfile").write_text(
        f"FROM {server.host}/{base}:latest\n"
        "RUN echo built by buildah > /greeting\n"
        "RUN mkdir -p /data && cat /greeting > /data/copy\n"
    )
    built = f"{owner.username}/{unique('built')}"
    env = {**os.environ, "BUILDAH_ISOLATION": "chroot"}
    common = [*storage, "--registries-conf", str(_registries_conf(tmp_path, server))]
    result = subprocess.run(
        [
            "buildah",
            *common,
            "bud",
            "--isolation",
            "chroot",
            "--tls-verify=false",
            f"--creds={creds(owner)}",
            "-t",
            f"{server.host}/{built}:latest",
            str(context),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    run(
        "buildah",
        *common,
        "push",
        "--tls-verify=false",
        f"--creds={creds(owner)}",
        f"{server.host}/{built}:latest",
    )
    manifest = json.loads(raw_manifest(server, owner, f"{built}:latest"))
    base_manifest = json.loads(raw_manifest(server, owner, f"{base}:latest"))
    # The base layer is reused as pushed, the RUN steps add what they wrote.
    assert manifest["layers"][0]["digest"] == base_manifest["layers"][0]["digest"]
    assert len(manifest["layers"]) >= 2
    skopeo_copy(f"docker://{server.host}/{built}:latest", f"dir:{tmp_path / 'out'}", owner)
    found = {}
    for layer in manifest["layers"]:
        blob = (tmp_path / "out" / layer["digest"].split(":", 1)[1]).read_bytes()
        with tarfile.open(fileobj=io.BytesIO(blob)) as archive:
            for name in ("greeting", "data/copy"):
                try:
                    found[name] = archive.extractfile(name).read()
                except KeyError:
                    continue
    assert found == {"greeting": b"built by buildah\n", "data/copy": b"built by buildah\n"}


def _registries_conf(tmp: Path, server: LiveServer) -> Path:
    path = tmp / "registries.conf"
    path.write_text(f'[[registry]]\nlocation = "{server.host}"\ninsecure = true\n')
    return path


def test_oras_artifact_and_referrer(server, owner, tmp_path, monkeypatch):
    import oras.oci
    import oras.provider

    repo = f"{owner.username}/{unique('oras')}"
    client = oras.provider.Registry(hostname=server.host, insecure=True)
    client.login(
        owner.username,
        owner.password,
        hostname=server.host,
        config_path=str(tmp_path / "auth.json"),
    )
    monkeypatch.chdir(tmp_path)
    Path("artifact.txt").write_text("an artifact")
    Path("signature.sig").write_text("a signature")
    # oras-py keeps one token for every scope and renews it only after a 403, so let its
    # first challenge be the push one (Quay answers 401 to a token lacking a grant).
    start = client.do_request(f"http://{server.host}/v2/{repo}/blobs/uploads/", "POST")
    assert start.status_code == 202
    response = client.push(target=f"{server.host}/{repo}:art", files=["artifact.txt"])
    assert response.status_code == 201
    token = token_for(server, (owner.username, owner.password), pull_push(repo))
    with v2_client(server, token) as raw:
        stored = raw.get(f"/v2/{repo}/manifests/art").content
    subject = oras.oci.Subject(mediaType=OCI_MANIFEST, digest=sha256(stored), size=len(stored))
    response = client.push(
        target=f"{server.host}/{repo}:sig",
        files=["signature.sig:application/vnd.example.signature"],
        subject=subject,
        manifest_annotations={"purpose": "signature"},
    )
    assert response.status_code == 201
    listing = client.do_request(f"http://{server.host}/v2/{repo}/referrers/{subject.digest}", "GET")
    assert listing.status_code == 200
    manifests = listing.json()["manifests"]
    assert len(manifests) == 1
    assert manifests[0]["annotations"] == {"purpose": "signature"}
    pulled = client.pull(target=f"{server.host}/{repo}:art", outdir=str(tmp_path / "pulled"))
    assert [Path(p).read_text() for p in pulled] == ["an artifact"]
    shutil.rmtree(tmp_path / "pulled")
