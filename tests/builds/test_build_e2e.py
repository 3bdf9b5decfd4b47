"""End-to-end builds FROM a private base image pushed into cargohold, pulled back with skopeo."""

from __future__ import annotations

import base64
import io
import json
import subprocess
import tarfile
import time
from pathlib import Path

import httpx
import pytest

from tests.support.accounts import TestUser
from tests.support.builds import (
    activate,
    busybox_context,
    custom_trigger,
    logs,
    push_image,
    setup_custom_trigger,
    start_trigger,
    wait_for_build,
)
from tests.support.content import make_repository
from tests.support.repos import create_robot, grant

pytestmark = pytest.mark.slow


def _skopeo(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["skopeo", *args], capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def base_image(server, builder_user, tmp_path_factory) -> str:
    """A busybox image (FROM scratch + Debian's static busybox) pushed to a private repo."""
    context = busybox_context(tmp_path_factory.mktemp("base") / "context")
    return push_image(server, builder_user, "busybox", context)


@pytest.fixture(scope="module")
def pull_robot(server, builder_user, base_image) -> str:
    """A robot of the builder's namespace that may read the private base image."""
    name, _ = create_robot(server, builder_user.username)
    grant(server, f"{builder_user.username}/busybox", name, "read")
    return name


def _app_dockerfile(base_image: str, marker: str) -> str:
    return (
        f"FROM {base_image}\n"
        f"RUN echo {marker} > /hello.txt\n"
        'RUN ["/bin/sh", "-c", "echo second step done"]\n'
    )


def _read_image_file(server, user: TestUser, reference: str, path: str, tmp_path: Path) -> bytes:
    tmp_path.mkdir(parents=True, exist_ok=True)
    target = tmp_path / "pulled"
    copied = _skopeo(
        "copy",
        "--src-tls-verify=false",
        "--src-creds",
        f"{user.username}:{user.password}",
        f"docker://{server.host}/{reference}",
        f"dir:{target}",
    )
    assert copied.returncode == 0, copied.stderr
    manifest = json.loads((target / "manifest.json").read_text())
    for layer in reversed(manifest["layers"]):
        blob = target / layer["digest"].split(":", 1)[1]
        with tarfile.open(blob) as archive:
            for member in archive.getmembers():
                if member.name.lstrip("./") == path.lstrip("/"):
                    return archive.extractfile(member).read()
    raise AssertionError(f"{path} not found in {reference}")


def _tag_exists(server, user: TestUser, reference: str) -> bool:
    return (
        _skopeo(
            "inspect",
            "--tls-verify=false",
            "--creds",
            f"{user.username}:{user.password}",
            f"docker://{server.host}/{reference}",
        ).returncode
        == 0
    )


def _webhook(view_config: dict, payload: dict) -> httpx.Response:
    url = httpx.URL(
        next(c["value"] for c in view_config["credentials"] if c["name"] == "Webhook Endpoint URL")
    )
    return httpx.post(
        str(url.copy_with(username=None, password=None)),
        content=json.dumps(payload).encode(),
        auth=(url.username, url.password),
        timeout=30,
    )


def test_webhook_build_over_git_daemon(
    server, builder_user, client, base_image, pull_robot, git_daemon, tmp_path
) -> None:
    _, source, commit = git_daemon.repository(
        {"Dockerfile": _app_dockerfile(base_image, "from-webhook")}
    )
    repo = make_repository(server, builder_user.username)
    trigger = setup_custom_trigger(server, builder_user, repo)
    view = activate(
        client,
        repo,
        trigger,
        {"build_source": source, "dockerfile_path": "/Dockerfile", "context": "/"},
        pull_robot=pull_robot,
    ).json()
    payload = {"commit": commit, "ref": "refs/heads/main", "default_branch": "main"}
    assert _webhook(view["config"], payload).text == "Okay"
    build = client.get(f"/api/v1/repository/{repo}/build/").json()["builds"][0]
    assert build["pull_robot"]["name"] == pull_robot
    done = wait_for_build(client, repo, build["id"])
    entries = logs(client, repo, build["id"])
    assert done["phase"] == "complete", "\n".join(e["message"] for e in entries)
    phases = [e["message"] for e in entries if e.get("type") == "phase"]
    assert phases == [
        "build-scheduled",
        "unpacking",
        "pulling",
        "building",
        "pushing",
        "complete",
    ]
    pulling = next(e for e in entries if e.get("message") == "pulling")
    assert pulling["data"]["pull_username"] == pull_robot
    assert pulling["data"]["base_image"].endswith("/busybox")
    assert any("second step done" in e["message"] for e in entries)
    assert sorted(done["tags"]) == ["latest", "main"]
    for tag in ("main", "latest"):
        content = _read_image_file(
            server, builder_user, f"{repo}:{tag}", "/hello.txt", tmp_path / tag
        )
        assert content == b"from-webhook\n"
    paged = client.get(f"/api/v1/repository/{repo}/build/{build['id']}/logs?start=2").json()
    assert paged["start"] == 2 and paged["logs"] == entries[2:]


def test_manual_start_over_git_daemon(
    server, builder_user, client, base_image, pull_robot, git_daemon, tmp_path
) -> None:
    _, source, commit = git_daemon.repository(
        {"sub/Dockerfile": _app_dockerfile(base_image, "from-git-daemon")}
    )
    repo = make_repository(server, builder_user.username)
    trigger = setup_custom_trigger(server, builder_user, repo)
    activated = activate(
        client,
        repo,
        trigger,
        {
            "build_source": source,
            "dockerfile_path": "/sub/Dockerfile",
            "context": "/sub",
            "tag_templates": ["build-${commit_info.short_sha}"],
        },
        pull_robot=pull_robot,
    )
    assert activated.status_code == 200
    build = start_trigger(client, repo, trigger, commit)
    assert build["tags"] == [f"build-{commit[:7]}"]
    done = wait_for_build(client, repo, build["id"])
    assert done["phase"] == "complete", logs(client, repo, build["id"])[-5:]
    content = _read_image_file(
        server, builder_user, f"{repo}:build-{commit[:7]}", "/hello.txt", tmp_path
    )
    assert content == b"from-git-daemon\n"


def _upload(client, data: bytes) -> str:
    drop = client.post("/api/v1/filedrop/", json={"mimeType": "application/gzip"}).json()
    assert httpx.put(drop["url"], content=data).status_code == 200
    return drop["file_id"]


def _tar_gz(files: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, content in files.items():
            data = content.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def test_archive_build_and_bad_archives(
    server, builder_user, client, base_image, pull_robot, tmp_path
) -> None:
    repo = make_repository(server, builder_user.username)
    archive = _tar_gz({"Dockerfile": _app_dockerfile(base_image, "from-archive")})
    response = client.post(
        f"/api/v1/repository/{repo}/build/",
        json={"file_id": _upload(client, archive), "docker_tags": ["v1"], "pull_robot": pull_robot},
    )
    assert response.status_code == 201, response.text
    done = wait_for_build(client, repo, response.json()["id"])
    assert done["phase"] == "complete", logs(client, repo, done["id"])[-5:]
    assert _read_image_file(server, builder_user, f"{repo}:v1", "/hello.txt", tmp_path) == (
        b"from-archive\n"
    )

    junk = client.post(
        f"/api/v1/repository/{repo}/build/",
        json={
            "file_id": _upload(client, base64.b64encode(b"\x00\x01binary" * 50)),
            "docker_tags": ["junk"],
        },
    ).json()
    failed = wait_for_build(client, repo, junk["id"])
    assert failed["phase"] == "error"
    errors = [e["message"] for e in logs(client, repo, junk["id"]) if e.get("type") == "error"]
    assert errors == ["The build file is not a tar or zip archive, nor a Dockerfile"]
    assert not _tag_exists(server, builder_user, f"{repo}:junk")


def test_failed_step_pushes_nothing(
    server, builder_user, client, base_image, pull_robot, git_daemon
) -> None:
    _, source, commit = git_daemon.repository(
        {"Dockerfile": f"FROM {base_image}\nRUN echo about to fail && exit 3\n"}
    )
    repo = make_repository(server, builder_user.username)
    trigger = custom_trigger(server, builder_user, client, repo, source, pull_robot=pull_robot)
    build = start_trigger(client, repo, trigger, commit)
    done = wait_for_build(client, repo, build["id"])
    assert done["phase"] == "error"
    entries = logs(client, repo, build["id"])
    assert any("about to fail" in e["message"] for e in entries)
    assert "exit status 3" in [e for e in entries if e.get("type") == "error"][-1]["message"]
    assert not _tag_exists(server, builder_user, f"{repo}:{commit[:7]}")


def test_busybox_build_time(server, builder_user, client, base_image, pull_robot) -> None:
    """Queued to complete for a small build on the busybox base, printed for the record
    (run with -s); sandboxing a build may cost it at most a couple of seconds."""
    timings = []
    for _ in range(3):
        repo = make_repository(server, builder_user.username)
        archive = _tar_gz({"Dockerfile": f"FROM {base_image}\nRUN echo timed > /hello.txt\n"})
        started = time.monotonic()
        response = client.post(
            f"/api/v1/repository/{repo}/build/",
            json={
                "file_id": _upload(client, archive),
                "docker_tags": ["latest"],
                "pull_robot": pull_robot,
            },
        )
        done = wait_for_build(client, repo, response.json()["id"])
        assert done["phase"] == "complete", logs(client, repo, done["id"])[-5:]
        timings.append(time.monotonic() - started)
    print(f"busybox build queued to complete: {', '.join(f'{t:.2f}' for t in timings)} s")
    assert min(timings) < 30
