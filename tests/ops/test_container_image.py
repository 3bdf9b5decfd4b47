"""The Containerfile builds with buildah, and the image is what the README promises: a
non-root user, config and data volumes, `cargohold serve` as its command, labels, a working
server inside. With no registry to pull from, the base image is assembled from this
machine's Python (tests.support.host_image) and pip reads the local package index."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.host_image import build_base_image, wheel_from_installed
from tests.support.server import REPO_ROOT, free_port

pytestmark = pytest.mark.slow
# Named per test process: the two backends' suites run side by side on one image store, and
# each removes its images (with any container still using them) when done.
BASE = f"localhost/cargohold-test-base-{os.getpid()}:latest"
IMAGE = f"localhost/cargohold-test-image-{os.getpid()}:latest"
# Packages the local index lacks, taken from the test environment's installed copies.
NOT_IN_INDEX = ["ua-parser"]


def buildah(*args: str, timeout: float = 60) -> str:
    done = subprocess.run(
        ["buildah", *args], capture_output=True, text=True, timeout=timeout, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:] or done.stdout[-3000:]
    return done.stdout.strip()


def local_package_index() -> Path | None:
    """A package index folder pip is configured with (file:// URL), or None."""
    listed = subprocess.run(
        [sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True
    ).stdout
    for url in re.findall(r"file://(\S+?)['\s]", listed):
        if Path(url).is_dir():
            return Path(url)
    return None


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    index = local_package_index()
    if index is None:
        pytest.skip("pip has no local package index to build the image offline")
    wheels = tmp_path_factory.mktemp("wheels")
    for name in NOT_IN_INDEX:
        wheel_from_installed(name, wheels)
    build_base_image(BASE)
    started = time.monotonic()
    try:
        buildah(
            "bud", "--isolation", "chroot", "--layers=false",
            "-f", str(REPO_ROOT / "Containerfile"), "-t", IMAGE,
            "--build-arg", f"BASE_IMAGE={BASE}",
            "--build-arg", f"PIP_INDEX_URL=file://{index}",
            "--build-arg", "PIP_FIND_LINKS=/wheels",
            "--build-arg", "WITH_SKOPEO=false",
            "--volume", f"{index.parent}:{index.parent}:ro",
            "--volume", f"{wheels}:/wheels:ro",
            str(REPO_ROOT),
            timeout=900,
        )  # fmt: skip
        print(f"image built in {time.monotonic() - started:.0f} s")
        yield IMAGE
    finally:
        subprocess.run(["buildah", "rmi", "--force", IMAGE, BASE], capture_output=True)


@pytest.fixture
def container(image: str) -> Iterator[str]:
    name = buildah("from", image)
    yield name
    subprocess.run(["buildah", "rm", name], capture_output=True)


def test_image_runs_as_non_root_with_volumes_labels_and_serve(image: str) -> None:
    config = json.loads(buildah("inspect", "--type", "image", image))["OCIv1"]["config"]
    assert config["User"] == "1001:0"
    assert config["Entrypoint"] == ["cargohold", "--config-dir", "/conf/stack"]
    assert config["Cmd"][0] == "serve"
    assert set(config["Volumes"]) == {"/conf/stack", "/var/lib/cargohold"}
    assert "8080/tcp" in config["ExposedPorts"]
    assert config["Labels"]["org.opencontainers.image.title"] == "cargohold"
    assert any(env.startswith("CARGOHOLD_DATA_DIR=") for env in config["Env"])
    sizes = {name: buildah("images", "--format", "{{.Size}}", name) for name in (image, BASE)}
    print(f"image size: {sizes[image]} (of which the test base is {sizes[BASE]})")


def test_the_image_lists_workers_and_serves(container: str) -> None:
    listed = buildah(
        "run", "--isolation", "chroot", "--user", "1001:0", container,
        "--", "cargohold", "--config-dir", "/conf/stack", "worker", "--list",
    )  # fmt: skip
    assert "repomirror" in listed and "gc" in listed
    port = free_port()
    process = subprocess.Popen(
        [
            "buildah", "run", "--isolation", "chroot", "--user", "1001:0", container, "--",
            "cargohold", "--config-dir", "/conf/stack", "serve",
            "--host", "127.0.0.1", "--port", str(port),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 90
        status = None
        while time.monotonic() < deadline and process.poll() is None:
            try:
                status = httpx.get(
                    f"http://127.0.0.1:{port}/health/instance", timeout=2
                ).status_code
            except httpx.HTTPError:
                time.sleep(0.5)
                continue
            if status == 200:
                break
        assert status == 200, (
            process.stdout.read().decode(errors="replace")[-3000:]
            if process.poll() is not None
            else status
        )
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
