"""The adapters' own promises: guarded downloads and posts, masked skopeo output, git's
redaction and failures."""

from __future__ import annotations

import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from cargohold.adapters import git, outbound, skopeo
from tests.support.canary import canary_server


def _allowing(*hosts: str) -> SimpleNamespace:
    return SimpleNamespace(SSRF_ALLOWED_HOSTS=list(hosts))


def test_download_writes_the_body_and_refuses_what_the_guard_refuses(tmp_path: Path) -> None:
    target = tmp_path / "archive"
    with canary_server() as canary:
        outbound.download(
            _allowing("127.0.0.1"),
            f"{canary.url}/archive",
            target,
            deadline=time.monotonic() + 10,
            max_bytes=1024,
        )
        assert target.read_bytes() == b"canary secret\n"
        with pytest.raises(outbound.DownloadTooLarge):
            outbound.download(
                _allowing("127.0.0.1"),
                f"{canary.url}/archive",
                target,
                deadline=time.monotonic() + 10,
                max_bytes=4,
            )
        with pytest.raises(outbound.OutboundRefused):
            outbound.download(
                _allowing(),
                f"{canary.url}/archive",
                target,
                deadline=time.monotonic() + 10,
                max_bytes=1024,
            )
        assert canary.requests == ["/archive", "/archive"]


def test_download_failure_hides_the_transport_words(tmp_path: Path) -> None:
    with canary_server() as canary:
        closed = f"http://127.0.0.1:{canary.port}"
    with pytest.raises(outbound.DownloadFailed) as failure:
        outbound.download(
            _allowing("127.0.0.1"),
            f"{closed}/archive",
            tmp_path / "archive",
            deadline=time.monotonic() + 5,
            max_bytes=1024,
        )
    assert str(failure.value) == ""


def test_post_for_status_answers_the_status_and_honours_a_refusal() -> None:
    with canary_server() as canary:
        guard = _allowing("127.0.0.1")
        options = {"timeout": 5}
        assert outbound.post_for_status(guard, f"{canary.url}/hook", client_options=options) == 200
        with pytest.raises(outbound.OutboundRefused):
            outbound.post_for_status(
                guard,
                f"{canary.url}/hook",
                refuse=lambda host, addresses: True,
                client_options=options,
            )
        assert canary.requests == ["/hook"]


def test_skopeo_output_is_masked_and_its_failures_are_results(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = tmp_path / "skopeo"
    fake.write_text(
        '#!/bin/sh\n[ "$1" = slow ] && exec sleep 5\necho "token hunter2 for $*"\n[ "$1" = ok ]\n'
    )
    fake.chmod(0o755)
    monkeypatch.setattr(skopeo, "SKOPEO", str(fake))
    tool = skopeo.Skopeo({"PATH": "/usr/bin:/bin"}, timeout=10, secrets=["hunter2"])
    done = tool.run("ok", "--flag")
    assert done.ok and done.stdout == "token ******** for ok --flag\n"
    assert not tool.run("fail").ok
    tool.timeout = 1
    assert tool.run("slow").stderr == "skopeo timed out after 1 seconds"


def test_skopeo_authfile_is_private(tmp_path: Path) -> None:
    path = Path(skopeo.write_authfile(tmp_path, "auth.json", "registry.test", ("user", "pw")))
    assert path.stat().st_mode & 0o777 == 0o600
    assert '"registry.test": {"auth": "dXNlcjpwdw=="}' in path.read_text()


def test_git_failures_never_show_credentials(tmp_path: Path) -> None:
    assert git.redact("fatal: https://user:secret@host/repo.git") == "fatal: https://host/repo.git"
    checked: list[str] = []
    with pytest.raises(git.GitFailed) as failure:
        git.checkout(
            "https://user:secret@127.0.0.1:9/repo.git",
            "abcdef1",
            None,
            tmp_path / "source",
            env=git.environment(tmp_path / "home", None),
            deadline=time.monotonic() + 10,
            before_fetch=checked.append,
        )
    assert checked == ["https://user:secret@127.0.0.1:9/repo.git"]
    assert "secret" not in str(failure.value)
