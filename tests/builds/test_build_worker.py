"""Builds that really run: git checkouts and archives built by buildah, pushed to cargohold."""

from __future__ import annotations

import shutil
import subprocess
import time

import pytest

from tests.support.builds import (
    GitDaemon,
    custom_trigger,
    logs,
    start_trigger,
    wait_for_build,
    wait_for_phase,
)
from tests.support.content import make_repository

pytestmark = pytest.mark.slow


def _processes_matching(text: str) -> bool:
    listing = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    return text in listing


def _wait_for_process(text: str, timeout: float = 30, present: bool = True) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _processes_matching(text) == present:
            return True
        time.sleep(0.2)
    return False


def _scratch_repo(git_daemon: GitDaemon, dockerfile: str) -> tuple[str, str]:
    """A served repository with the Dockerfile and a static busybox; its URL and commit."""
    path, url, _ = git_daemon.repository({"Dockerfile": dockerfile})
    shutil.copy2("/bin/busybox", path / "busybox")
    subprocess.run(["git", "add", "busybox"], cwd=path, check=True)
    subprocess.run(["git", "commit", "-q", "-m", "busybox"], cwd=path, check=True)
    commit = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=path, check=True, capture_output=True, text=True
    ).stdout.strip()
    return url, commit


def test_failing_dockerfile_ends_in_error(server, builder_user, client, git_daemon) -> None:
    source, commit = _scratch_repo(
        git_daemon,
        "FROM scratch\nCOPY busybox /bin/busybox\n"
        'RUN ["/bin/busybox", "sh", "-c", "echo scratch step; exit 4"]\n',
    )
    repo = make_repository(server, builder_user.username)
    trigger = custom_trigger(server, builder_user, client, repo, source)
    build = start_trigger(client, repo, trigger, commit)
    done = wait_for_build(client, repo, build["id"])
    assert done["phase"] == "error"
    entries = logs(client, repo, build["id"])
    phases = [e["message"] for e in entries if e.get("type") == "phase"]
    assert phases == ["build-scheduled", "unpacking", "pulling", "building", "error"]
    assert any(e.get("type") == "command" and "COPY busybox" in e["message"] for e in entries)
    errors = [e["message"] for e in entries if e.get("type") == "error"]
    assert any(e["message"] == "scratch step" for e in entries)
    assert errors and "exit status 4" in errors[-1]


def test_cancel_kills_a_running_step(server, builder_user, client, git_daemon) -> None:
    source, commit = _scratch_repo(
        git_daemon,
        'FROM scratch\nCOPY busybox /bin/busybox\nRUN ["/bin/busybox", "sleep", "377"]\n',
    )
    repo = make_repository(server, builder_user.username)
    trigger = custom_trigger(server, builder_user, client, repo, source)
    build = start_trigger(client, repo, trigger, commit)
    wait_for_phase(client, repo, build["id"], "building")
    deadline_ok = False
    for _ in range(100):
        if (
            "sleep 377"
            in subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
        ):
            deadline_ok = True
            break
        import time

        time.sleep(0.2)
    assert deadline_ok
    cancelled = client.delete(f"/api/v1/repository/{repo}/build/{build['id']}")
    assert cancelled.status_code == 201
    done = wait_for_build(client, repo, build["id"])
    assert done["phase"] == "cancelled"
    # The API records the cancel at once; the worker notices within a poll and kills the step.
    assert _wait_for_process("sleep 377", present=False)


def test_unknown_repository_and_missing_commit(server, builder_user, client, git_daemon) -> None:
    repo = make_repository(server, builder_user.username)
    unknown = custom_trigger(server, builder_user, client, repo, f"{git_daemon.url}/none.git")
    build = start_trigger(client, repo, unknown, "abcdef1234567")
    done = wait_for_build(client, repo, build["id"])
    assert done["phase"] == "error"
    message = [e for e in logs(client, repo, build["id"]) if e.get("type") == "error"][-1]
    assert "none.git" in message["message"]

    _, source, _ = git_daemon.repository({"Dockerfile": "FROM scratch\n"})
    present = custom_trigger(server, builder_user, client, repo, source)
    missing = start_trigger(client, repo, present, "abcdef1234567")
    done = wait_for_build(client, repo, missing["id"])
    assert done["phase"] == "error"
    errors = [e["message"] for e in logs(client, repo, missing["id"]) if e.get("type") == "error"]
    assert errors == [f"Could not find commit abcdef1234567 in {source}"]
