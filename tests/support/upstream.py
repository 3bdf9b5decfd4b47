"""A CNCF distribution registry (Debian's `docker-registry`) on loopback, as a mirror upstream."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import httpx
import yaml

from tests.support.registry import Image, make_index, sha256, write_oci_layout
from tests.support.server import free_port

DOCKER_REGISTRY = "/usr/bin/docker-registry"


class UpstreamRegistry:
    """`docker-registry serve` with filesystem storage, optionally behind htpasswd basic auth."""

    def __init__(self, workdir: Path, credentials: tuple[str, str] | None = None) -> None:
        self.workdir = workdir
        self.credentials = credentials
        self.port = free_port()
        self.host = f"127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> UpstreamRegistry:
        self.workdir.mkdir(parents=True, exist_ok=True)
        config: dict = {
            "version": 0.1,
            "log": {"level": "warn"},
            "storage": {
                "filesystem": {"rootdirectory": str(self.workdir / "data")},
                "delete": {"enabled": True},
            },
            "http": {"addr": self.host},
        }
        if self.credentials is not None:
            htpasswd = self.workdir / "htpasswd"
            user, password = self.credentials
            subprocess.run(
                ["htpasswd", "-Bbc", str(htpasswd), user, password],
                check=True,
                capture_output=True,
            )
            config["auth"] = {"htpasswd": {"realm": "upstream", "path": str(htpasswd)}}
        config_path = self.workdir / "config.yml"
        config_path.write_text(yaml.safe_dump(config))
        log = open(self.workdir / "registry.log", "ab")  # noqa: SIM115 - owned by the process
        self.process = subprocess.Popen(
            [DOCKER_REGISTRY, "serve", str(config_path)], stdout=log, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://{self.host}/v2/", timeout=1).status_code in (200, 401):
                    return self
            except httpx.HTTPError:
                time.sleep(0.05)
        raise RuntimeError("docker-registry did not start")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)

    def _auth_args(self) -> list[str]:
        if self.credentials is None:
            return []
        return ["--dest-creds", f"{self.credentials[0]}:{self.credentials[1]}"]

    def push(self, repo: str, tag: str, image: Image, scratch: Path) -> str:
        """Copy one image into `repo:tag` with skopeo; returns its manifest digest."""
        layout = write_oci_layout(scratch / f"{tag}-layout", {tag: image})
        self._copy(f"oci:{layout}:{tag}", repo, tag)
        return image.digest

    def push_index(self, repo: str, tag: str, images: list[Image], scratch: Path) -> str:
        """A multi-arch index of `images` as `repo:tag`; returns the index digest."""
        index = make_index(images)
        layout = write_oci_layout(
            scratch / f"{tag}-index", {str(i): image for i, image in enumerate(images)}, index
        )
        self._copy(f"oci:{layout}:latest", repo, tag, multi=True)
        return sha256(index)

    def _copy(self, source: str, repo: str, tag: str, *, multi: bool = False) -> None:
        subprocess.run(
            [
                "skopeo",
                "--insecure-policy",
                "copy",
                *(["--all"] if multi else []),
                "--preserve-digests",
                "--dest-tls-verify=false",
                *self._auth_args(),
                source,
                f"docker://{self.host}/{repo}:{tag}",
            ],
            check=True,
            capture_output=True,
        )

    def delete_tag(self, repo: str, tag: str) -> None:
        """Delete the manifest behind a tag (distribution deletes by digest)."""
        auth = self.credentials
        head = httpx.head(
            f"http://{self.host}/v2/{repo}/manifests/{tag}",
            headers={
                "Accept": "application/vnd.oci.image.manifest.v1+json,"
                "application/vnd.oci.image.index.v1+json"
            },
            auth=auth,
        )
        digest = head.headers["docker-content-digest"]
        response = httpx.delete(f"http://{self.host}/v2/{repo}/manifests/{digest}", auth=auth)
        assert response.status_code == 202, response.text

    def tags(self, repo: str) -> list[str]:
        response = httpx.get(f"http://{self.host}/v2/{repo}/tags/list", auth=self.credentials)
        return sorted(json.loads(response.text).get("tags") or [])
