"""skopeo: lists, inspects and copies images between registries.

Credentials go in private auth files (`write_authfile`), never on the command line; what
skopeo prints is masked of the secrets it was given before anyone reads it.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from cargohold.adapters.process import dies_with_worker

SKOPEO = os.environ.get("CARGOHOLD_SKOPEO", "skopeo")
_OUTPUT_LIMIT = 4000


@dataclass
class SkopeoResult:
    ok: bool
    stdout: str
    stderr: str


def tls_flag(name: str, verify: bool) -> str:
    """`--tls-verify=true`, `--src-tls-verify=false`, ... for the flag `name`."""
    return f"--{name}={str(verify).lower()}"


def copy_args(source: str, destination: str, *options: str) -> list[str]:
    """skopeo's arguments copying `source` to `destination` (transport-prefixed names)."""
    return ["copy", *options, source, destination]


def command(*args: str) -> list[str]:
    return [SKOPEO, *args]


def write_authfile(
    directory: Path, name: str, host: str, credentials: tuple[str, str] | None
) -> str:
    """A containers auth file readable by its owner only, holding `credentials` for `host`."""
    auths = {}
    if credentials is not None:
        encoded = base64.b64encode(f"{credentials[0]}:{credentials[1]}".encode()).decode()
        auths[host] = {"auth": encoded}
    path = directory / name
    path.write_text(json.dumps({"auths": auths}))
    path.chmod(0o600)
    return str(path)


class Skopeo:
    """Runs skopeo with one environment and timeout, masking `secrets` in its output."""

    def __init__(self, env: dict[str, str], timeout: int, secrets: list[str]) -> None:
        self.env = env
        self.timeout = timeout
        self.secrets = secrets

    def _redact(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, "********")
        return text[-_OUTPUT_LIMIT:]

    def run(self, *args: str) -> SkopeoResult:
        try:
            done = subprocess.run(
                dies_with_worker([SKOPEO, *args]),
                capture_output=True,
                env=self.env,
                timeout=self.timeout,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            return SkopeoResult(False, "", f"skopeo timed out after {exc.timeout} seconds")
        except OSError as exc:
            return SkopeoResult(False, "", f"skopeo could not be started: {exc}")
        return SkopeoResult(
            done.returncode == 0,
            self._redact(done.stdout.decode(errors="replace")),
            self._redact(done.stderr.decode(errors="replace")),
        )

    def list_tags(self, image: str, *options: str) -> tuple[list[str] | None, SkopeoResult]:
        """The tags of `image` (docker://...), or None with the failed run."""
        result = self.run("list-tags", *options, image)
        if not result.ok:
            return None, result
        try:
            found = json.loads(result.stdout).get("Tags") or []
        except (ValueError, AttributeError):
            return None, SkopeoResult(False, result.stdout, "unreadable list-tags output")
        return [str(tag) for tag in found], result

    def manifest_digest(self, image: str, *options: str) -> str | None:
        """The digest of the manifest `image` names (the index for multi-arch images)."""
        result = self.run("inspect", "--raw", *options, image)
        if not result.ok:
            return None
        return "sha256:" + hashlib.sha256(result.stdout.encode()).hexdigest()
