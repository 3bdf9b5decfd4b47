"""git: checks out one commit of a build's source repository.

git resolves host names itself, so the caller checks the source with the outbound guard
(`outbound.check_git_source`) before every fetch; `before_fetch` is that check. Redirects
are not followed, only git's own transports are allowed, and the system git config is not
read. Failures carry git's last words with any user:password removed from URLs.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from cargohold.adapters.process import dies_with_worker

_CREDENTIALS_IN_URL = re.compile(r"(://)[^/@\s]+@")


class GitFailed(Exception):
    """git could not fetch or check out the source; the message is safe to show."""


def redact(text: str) -> str:
    """Drop user:password from URLs in text that is shown to users."""
    return _CREDENTIALS_IN_URL.sub(r"\1", text)


def environment(home: Path, deploy_key: str | None) -> dict[str, str]:
    """git's environment: `home` for its files (known hosts, the deploy key), no prompts."""
    home.mkdir(exist_ok=True)
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_ALLOW_PROTOCOL": "git:http:https:ssh",
        "GIT_CONFIG_NOSYSTEM": "1",
    }
    ssh = (
        "ssh -o BatchMode=yes -o StrictHostKeyChecking=accept-new"
        f" -o UserKnownHostsFile={home / 'known_hosts'}"
    )
    if deploy_key:
        key_path = home / "deploy_key"
        key_path.write_text(deploy_key)
        key_path.chmod(0o600)
        ssh += f" -o IdentitiesOnly=yes -i {key_path}"
    env["GIT_SSH_COMMAND"] = ssh
    return env


def _run(args: list[str], env: dict[str, str], deadline: float) -> None:
    try:
        result = subprocess.run(
            dies_with_worker(["git", "-c", "http.followRedirects=false", *args]),
            env=env,
            capture_output=True,
            text=True,
            timeout=max(deadline - time.monotonic(), 1),
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise GitFailed("Timed out fetching the git repository") from exc
    if result.returncode != 0:
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        raise GitFailed(redact(lines[-1] if lines else "git failed"))


def _resolve_commit(repository: Path, commit: str, env: dict[str, str]) -> str | None:
    resolved = subprocess.run(
        ["git", "-C", str(repository), "rev-parse", "--verify", "--quiet", f"{commit}^{{commit}}"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    return resolved.stdout.strip() if resolved.returncode == 0 else None


def checkout(
    url: str,
    commit: str,
    ref: str | None,
    target: Path,
    *,
    env: dict[str, str],
    deadline: float,
    before_fetch: Callable[[str], None],
) -> None:
    """Clone `url` into `target` and check out `commit` (detached), fetching `ref` when the
    clone does not hold the commit."""
    before_fetch(url)
    _run(["clone", "--quiet", "--no-checkout", "--", url, str(target)], env, deadline)
    resolved = _resolve_commit(target, commit, env)
    if resolved is None and ref:
        before_fetch(url)
        _run(["-C", str(target), "fetch", "--quiet", "origin", ref], env, deadline)
        resolved = _resolve_commit(target, commit, env)
    if resolved is None:
        raise GitFailed(f"Could not find commit {commit} in {redact(url)}")
    _run(["-C", str(target), "checkout", "--quiet", "--detach", resolved], env, deadline)
