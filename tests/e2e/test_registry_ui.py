"""The web UI in a real browser against a live server: tags pushed with skopeo."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from tests.e2e.test_ui import sign_in
from tests.support.accounts import create_user
from tests.support.server import LiveServer


def skopeo_push(server: LiveServer, layout, tag: str, repo: str, creds: str) -> None:
    import subprocess

    subprocess.run(
        [
            "skopeo",
            "copy",
            "--dest-tls-verify=false",
            "--dest-creds",
            creds,
            f"oci:{layout}:{tag}",
            f"docker://{server.host}/{repo}:{tag}",
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )


def test_tags_move_and_restore_in_the_browser(page: Page, server: LiveServer, tmp_path) -> None:
    from tests.support.registry import make_image, write_oci_layout

    owner = create_user(server)
    repo = f"{owner.username}/app"
    first, second = make_image({"v": b"1"}), make_image({"v": b"2"})
    layout = write_oci_layout(tmp_path / "layout", {"one": first, "two": second})
    creds = f"{owner.username}:{owner.password}"
    skopeo_push(server, layout, "one", repo, creds)
    skopeo_push(server, layout, "two", repo, creds)

    sign_in(page, server, owner.username, owner.password)
    page.goto(f"{server.url}/#/repository/{repo}?tab=tags")
    rows = page.get_by_role("row")
    expect(rows.filter(has_text="one")).to_have_count(1)
    expect(rows.filter(has_text="two")).to_have_count(1)

    one_row = rows.filter(has_text="one")
    one_row.get_by_text("Change").click()
    one_row.get_by_label("Move to digest").fill(second.digest)
    one_row.get_by_role("button", name="Move").click()
    expect(page.get_by_role("status")).to_contain_text("Tag one moved.")

    page.goto(f"{server.url}/#/repository/{repo}?tab=history&tag=one")
    restore = page.get_by_role("button", name="Restore one")
    expect(restore).to_have_count(1)
    restore.click()
    expect(page.get_by_role("status")).to_contain_text("restored")

    page.goto(f"{server.url}/#/repository/{repo}?tab=tags")
    expect(
        page.get_by_role("row").filter(has_text="one").get_by_title(first.digest)
    ).to_be_visible()
