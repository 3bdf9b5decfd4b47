"""HTTPS as Quay serves it: ssl.cert and ssl.key in the config folder, or a proxy in front."""

from __future__ import annotations

import json
import shutil
import ssl
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.ops.conftest import run
from tests.support.accounts import create_user, unique
from tests.support.registry import make_image, write_oci_layout
from tests.support.server import REPO_ROOT, LiveServer
from tests.support.tls import Certificates, make_certificates

pytestmark = pytest.mark.slow


def _https_server(tmp_path: Path) -> tuple[LiveServer, Certificates]:
    certs = make_certificates(tmp_path / "pki")
    live = LiveServer(tmp_path / "server", {"PREFERRED_URL_SCHEME": "https"})
    live.workdir.mkdir(parents=True)
    shutil.copy(certs.cert, live.workdir / "ssl.cert")
    shutil.copy(certs.key, live.workdir / "ssl.key")
    live.url = f"https://{live.host}"
    live.verify = ssl.create_default_context(cafile=certs.ca)
    return live, certs


def test_podman_and_skopeo_push_and_pull_over_https(tmp_path: Path, podman_storage) -> None:
    live, certs = _https_server(tmp_path)
    try:
        live.start()
        owner = create_user(live)
        cert_dir = tmp_path / "certs.d"
        cert_dir.mkdir()
        shutil.copy(certs.ca, cert_dir / "ca.crt")
        authfile = tmp_path / "auth.json"
        image = make_image()
        layout = write_oci_layout(tmp_path / "layout", {"latest": image})
        repo = f"{live.host}/{owner.username}/{unique('tls')}"

        # Without the CA the clients refuse the server; with it, they log in.
        refused = run(
            "podman", "login", f"--authfile={authfile}", "-u", owner.username,
            "-p", owner.password, live.host, check=False,
        )  # fmt: skip
        assert refused.returncode != 0
        assert "certificate" in refused.stderr
        run(
            "podman", "login", f"--authfile={authfile}", f"--cert-dir={cert_dir}",
            "-u", owner.username, "-p", owner.password, live.host,
        )  # fmt: skip
        run(
            "skopeo", "copy", f"--authfile={authfile}", f"--dest-cert-dir={cert_dir}",
            f"oci:{layout}:latest", f"docker://{repo}:v1",
        )  # fmt: skip
        inspected = run(
            "skopeo", "inspect", "--raw", f"--authfile={authfile}", f"--cert-dir={cert_dir}",
            f"docker://{repo}:v1",
        )  # fmt: skip
        assert inspected.stdout.encode() == image.manifest
        run(
            "podman", *podman_storage, "pull", f"--authfile={authfile}",
            f"--cert-dir={cert_dir}", f"{repo}:v1",
        )  # fmt: skip
        digest = run(
            "podman", *podman_storage, "image", "inspect", "--format", "{{.Digest}}",
            f"{repo}:v1",
        ).stdout.strip()  # fmt: skip
        assert digest == image.digest
        run(
            "podman", *podman_storage, "push", f"--authfile={authfile}",
            f"--cert-dir={cert_dir}", f"{repo}:v1", f"{repo}:v2",
        )  # fmt: skip
        tags = run(
            "skopeo", "list-tags", f"--authfile={authfile}", f"--cert-dir={cert_dir}",
            f"docker://{repo}",
        )  # fmt: skip
        assert sorted(json.loads(tags.stdout)["Tags"]) == ["v1", "v2"]

        challenge = httpx.get(f"{live.url}/v2/", verify=live.verify)
        assert challenge.status_code == 401
        assert f'realm="https://{live.host}/v2/auth"' in challenge.headers["www-authenticate"]
        with pytest.raises(httpx.HTTPError):
            httpx.get(f"http://{live.host}/v2/", timeout=5)
    finally:
        live.destroy()


def test_external_tls_termination_serves_http_but_names_https(tmp_path: Path) -> None:
    live = LiveServer(
        tmp_path / "server",
        {"PREFERRED_URL_SCHEME": "https", "EXTERNAL_TLS_TERMINATION": True},
    )
    try:
        live.start()
        challenge = httpx.get(f"{live.url}/v2/")
        assert challenge.status_code == 401
        assert f'realm="https://{live.host}/v2/auth"' in challenge.headers["www-authenticate"]
    finally:
        live.destroy()


def test_https_without_a_certificate_stops_with_one_line(tmp_path: Path) -> None:
    folder = tmp_path / "config"
    folder.mkdir()
    (folder / "config.yaml").write_text(
        f"PREFERRED_URL_SCHEME: https\nDATA_DIR: {tmp_path / 'data'}\n"
    )
    (folder / "ssl.cert").write_text("not a certificate")
    result = subprocess.run(
        [sys.executable, "-m", "cargohold.cli", "--config-dir", str(folder), "serve"],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PYTHONPATH": str(REPO_ROOT), "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 2
    assert "ssl.key is missing" in result.stderr
    (folder / "ssl.key").write_text("not a key")
    result = subprocess.run(
        [sys.executable, "-m", "cargohold.cli", "--config-dir", str(folder), "serve"],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PYTHONPATH": str(REPO_ROOT), "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 2
    assert "not a usable certificate and key" in result.stderr
