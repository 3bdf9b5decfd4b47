"""`cargohold user create --superuser` takes effect on a running server, with no restart."""

from __future__ import annotations

import subprocess
import sys

import yaml

from tests.support.server import REPO_ROOT, LiveServer
from tests.support.sessions import session_client

PASSWORD = "a-long-password-1"


def _create(live: LiveServer, name: str, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            sys.executable, "-m", "cargohold.cli", "--config-dir", str(live.workdir),
            "user", "create", name, "--email", f"{name}@example.com", "--password", PASSWORD,
            *extra,
        ],
        capture_output=True, text=True, timeout=120,
        env={"PYTHONPATH": str(REPO_ROOT), "PATH": "/usr/bin:/bin"},
    )  # fmt: skip


def test_a_superuser_created_on_the_command_line_counts_at_once(server_factory) -> None:
    live = server_factory()
    config_before = (live.workdir / "config.yaml").read_text()

    plain = _create(live, "plainperson")
    assert plain.returncode == 0, plain.stderr
    with session_client(live, "plainperson", PASSWORD) as browser:
        assert browser.get("/api/v1/superuser/users/").status_code == 403
        assert "super_user" not in browser.get("/api/v1/user/").json()

    created = _create(live, "carol", "--superuser")
    assert created.returncode == 0, created.stderr
    assert "created user carol (superuser)" in created.stdout
    with session_client(live, "carol", PASSWORD) as browser:
        assert browser.get("/api/v1/user/").json()["super_user"] is True
        listed = browser.get("/api/v1/superuser/users/")
        assert listed.status_code == 200, listed.text
        flags = {user["username"]: user["super_user"] for user in listed.json()["users"]}
        assert flags["carol"] is True
        assert flags["plainperson"] is False

    assert (live.workdir / "config.yaml").read_text() == config_before
    assert "carol" not in yaml.safe_load(config_before)["SUPER_USERS"]
