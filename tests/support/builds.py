"""Helpers for build tests: browser sessions, custom-git triggers, git repositories, waiting."""

from __future__ import annotations

import secrets
import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select

from cargohold.auth.sessions import encode_session, login_session
from cargohold.db.models.accounts import User
from tests.support.accounts import TestUser
from tests.support.server import LiveServer, free_port

TERMINAL = {"complete", "error", "internalerror", "cancelled", "expired"}


def session_client(server: LiveServer, user: TestUser) -> httpx.Client:
    """A client signed in with a browser session cookie (and its CSRF token)."""
    settings = server.settings
    with server.db() as session:
        record = session.scalar(select(User).where(User.username == user.username))
        data = login_session(record.uuid, record.session_token)
    client = httpx.Client(base_url=server.url, timeout=30, headers={"X-CSRF-Token": data["csrf"]})
    client.cookies.set(settings.SESSION_COOKIE_NAME, encode_session(settings, data))
    return client


def setup_custom_trigger(server: LiveServer, user: TestUser, repository: str) -> str:
    """Create an inactive custom-git trigger the way the web UI does; returns its uuid."""
    with session_client(server, user) as client:
        response = client.get(f"/customtrigger/setup/{repository}")
    assert response.status_code == 302, response.text
    location = response.headers["location"]
    assert location.startswith(f"/repository/{repository}/trigger/")
    return location.rsplit("/", 1)[1]


def activate(
    client: httpx.Client, repository: str, trigger: str, config: dict[str, Any], **extra: Any
) -> httpx.Response:
    return client.post(
        f"/api/v1/repository/{repository}/trigger/{trigger}/activate",
        json={"config": config, **extra},
    )


def git(cwd: Path, *args: str) -> str:
    result = subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True)
    return result.stdout.strip()


def make_git_repo(path: Path, files: dict[str, str], branch: str = "main") -> str:
    """A git repository holding `files` on `branch`; returns the commit sha."""
    path.mkdir(parents=True)
    git(path, "init", "--quiet", "-b", branch)
    git(path, "config", "user.email", "dev@example.com")
    git(path, "config", "user.name", "Dev")
    commit_files(path, files, "initial")
    return git(path, "rev-parse", "HEAD")


def commit_files(path: Path, files: dict[str, str], message: str) -> str:
    for name, content in files.items():
        target = path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content)
    git(path, "add", "-A")
    git(path, "commit", "--quiet", "-m", message)
    return git(path, "rev-parse", "HEAD")


def wait_for_build(
    client: httpx.Client, repository: str, build: str, timeout: float = 240
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        view = client.get(f"/api/v1/repository/{repository}/build/{build}/status").json()
        if view["phase"] in TERMINAL:
            return view
        time.sleep(0.5)
    raise AssertionError(f"build {build} did not finish: {view}")


def wait_for_phase(
    client: httpx.Client, repository: str, build: str, phase: str, timeout: float = 120
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        current = client.get(f"/api/v1/repository/{repository}/build/{build}/status").json()
        if current["phase"] == phase:
            return
        if current["phase"] in TERMINAL:
            raise AssertionError(f"build ended as {current['phase']} before {phase}")
        time.sleep(0.3)
    raise AssertionError(f"build {build} never reached {phase}")


def logs(client: httpx.Client, repository: str, build: str) -> list[dict[str, Any]]:
    return client.get(f"/api/v1/repository/{repository}/build/{build}/logs").json()["logs"]


def start_trigger(client, repo: str, trigger: str, commit: str) -> dict:
    response = client.post(
        f"/api/v1/repository/{repo}/trigger/{trigger}/start", json={"commit_sha": commit}
    )
    assert response.status_code == 201, response.text
    return response.json()


def custom_trigger(
    server, user, client, repo: str, source: str, pull_robot: str | None = None
) -> str:
    trigger = setup_custom_trigger(server, user, repo)
    extra = {"pull_robot": pull_robot} if pull_robot else {}
    response = activate(
        client,
        repo,
        trigger,
        {"build_source": source, "dockerfile_path": "/Dockerfile", "context": "/"},
        **extra,
    )
    assert response.status_code == 200, response.text
    return trigger


class GitDaemon:
    """`git daemon` exporting every repository under `served` on a loopback port."""

    def __init__(self, served: Path) -> None:
        self.served = served
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"git://127.0.0.1:{self.port}"

    def start(self) -> GitDaemon:
        self.process = subprocess.Popen(
            [
                "git",
                "daemon",
                "--reuseaddr",
                "--export-all",
                "--listen=127.0.0.1",
                f"--port={self.port}",
                f"--base-path={self.served}",
                str(self.served),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", self.port)) == 0:
                    return self
            time.sleep(0.1)
        raise RuntimeError("git daemon did not start")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)

    def repository(self, files: dict[str, str]) -> tuple[Path, str, str]:
        """A new served repository holding `files`: its path, its git URL and the commit."""
        name = f"repo-{secrets.token_hex(4)}.git"
        path = self.served / name
        commit = make_git_repo(path, files)
        return path, f"{self.url}/{name}", commit


def push_image(server: LiveServer, user: TestUser, name: str, context: Path) -> str:
    """Build `context` (holding a Dockerfile) with the host's buildah and push it as
    user/name:latest; the build's storage is removed afterwards. Returns the reference."""
    work = context.parent / f"{context.name}-storage"
    storage = [
        "--root",
        str(work / "root"),
        "--runroot",
        str(work / "run"),
        "--storage-driver",
        "vfs",
    ]
    reference = f"{server.host}/{user.username}/{name}:latest"
    try:
        built = subprocess.run(
            [
                "buildah",
                *storage,
                "bud",
                "--isolation",
                "chroot",
                "-q",
                "-t",
                reference,
                str(context),
            ],
            capture_output=True,
            text=True,
        )
        assert built.returncode == 0, built.stderr
        pushed = subprocess.run(
            [
                "buildah",
                *storage,
                "push",
                "--tls-verify=false",
                "--creds",
                f"{user.username}:{user.password}",
                reference,
                f"docker://{reference}",
            ],
            capture_output=True,
            text=True,
        )
        assert pushed.returncode == 0, pushed.stderr
    finally:
        subprocess.run(["buildah", *storage, "rmi", "--all", "-f"], capture_output=True)
        subprocess.run(["rm", "-rf", str(work)], check=True)
    return reference


def busybox_context(path: Path) -> Path:
    """A build context for FROM scratch + Debian's static busybox."""
    path.mkdir(parents=True)
    shutil.copy2("/bin/busybox", path / "busybox")
    (path / "Dockerfile").write_text(
        'FROM scratch\nCOPY busybox /bin/busybox\nRUN ["/bin/busybox", "--install", "-s", "/bin"]\n'
    )
    return path


def read_image_layers(
    server: LiveServer, user: TestUser, reference: str, target: Path
) -> list[bytes]:
    """Pull an image with skopeo; the raw bytes of its layers, uncompressed."""
    import gzip
    import json

    copied = subprocess.run(
        [
            "skopeo",
            "copy",
            "--src-tls-verify=false",
            "--src-creds",
            f"{user.username}:{user.password}",
            f"docker://{server.host}/{reference}",
            f"dir:{target}",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert copied.returncode == 0, copied.stderr
    manifest = json.loads((target / "manifest.json").read_text())
    layers = []
    for layer in manifest["layers"]:
        data = (target / layer["digest"].split(":", 1)[1]).read_bytes()
        layers.append(gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data)
    return layers


def image_file(layers: list[bytes], path: str) -> bytes | None:
    """A file's content in the topmost layer that has it."""
    import io
    import tarfile

    for layer in reversed(layers):
        with tarfile.open(fileobj=io.BytesIO(layer)) as archive:
            for member in archive.getmembers():
                if member.name.lstrip("./") == path.lstrip("/") and member.isfile():
                    return archive.extractfile(member).read()
    return None
