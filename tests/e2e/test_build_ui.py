"""The web UI in a real browser: a build started from an uploaded archive, followed to the end."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.test_ui import sign_in
from tests.support.accounts import create_user
from tests.support.content import make_repository
from tests.support.server import LiveServer

pytestmark = pytest.mark.slow

DOCKERFILE = b"""FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "sh", "-c", "echo built in the browser > /hello.txt"]
"""


def build_archive(path: Path) -> Path:
    with tarfile.open(path, "w:gz") as archive:
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(DOCKERFILE)
        archive.addfile(info, io.BytesIO(DOCKERFILE))
        archive.add("/bin/busybox", arcname="busybox")
    return path


def test_build_log_is_followed_to_completion(page: Page, server: LiveServer, tmp_path) -> None:
    owner = create_user(server)
    repo = make_repository(server, owner.username, "built")
    sign_in(page, server, owner.username, owner.password)
    page.goto(f"{server.url}/#/repository/{repo}?tab=builds")
    page.get_by_label("Archive or Dockerfile to upload").set_input_files(
        str(build_archive(tmp_path / "context.tar.gz"))
    )
    page.get_by_label("Tags (comma separated)").fill("fromui")
    page.get_by_role("button", name="Start build").click()

    log = page.locator("pre.log")
    expect(log).to_be_visible()
    expect(page.get_by_text("Phase:").locator("span.badge")).to_have_text(
        "complete", timeout=240_000
    )
    expect(log).to_contain_text("building")
    expect(log).to_contain_text("pushing")

    page.goto(f"{server.url}/#/repository/{repo}?tab=tags")
    expect(page.get_by_role("row").filter(has_text="fromui")).to_have_count(1)


def test_a_custom_git_trigger_is_created_from_the_triggers_tab(
    page: Page, server: LiveServer
) -> None:
    """The setup route wants the CSRF token; the page sends it, so the button still works."""
    owner = create_user(server)
    repo = make_repository(server, owner.username, "triggered")
    sign_in(page, server, owner.username, owner.password)
    page.goto(f"{server.url}/#/repository/{repo}?tab=triggers")
    expect(page.get_by_text("No build triggers.")).to_be_visible()
    page.get_by_role("button", name="Create custom git trigger").click()
    expect(page.get_by_text("This trigger is not active yet.")).to_be_visible()
    expect(page.get_by_role("heading", name="custom-git trigger")).to_be_visible()
