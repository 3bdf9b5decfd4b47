"""Every page and tab of the UI renders for its owner with no script error and no API error shown."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from tests.e2e.test_ui import sign_in
from tests.support.accounts import create_organization, create_user
from tests.support.content import make_repository


def test_every_tab_renders_without_errors(page: Page, server_factory) -> None:
    server = server_factory({"FEATURE_SUPERUSERS_FULL_ACCESS": True})
    admin = create_user(server, "admin")
    org = create_organization(server, admin)
    repo = make_repository(server, org, "tour")
    script_errors: list[str] = []
    page.on("pageerror", lambda error: script_errors.append(str(error)))

    sign_in(page, server, admin.username, admin.password)
    pages = {
        "#/": "Repositories",
        f"#/?view=org:{org}": "Repositories",
        "#/?view=starred": "Repositories",
        "#/?view=public": "Repositories",
        "#/new-repository": "Create repository",
        "#/new-organization": "Create organization",
    }
    for tab in (
        "tags",
        "history",
        "permissions",
        "settings",
        "notifications",
        "mirror",
        "triggers",
        "builds",
        "logs",
    ):
        pages[f"#/repository/{repo}?tab={tab}"] = repo
    for tab in ("teams", "robots", "applications", "prototypes", "quota", "logs"):
        pages[f"#/organization/{org}?tab={tab}"] = f"Organization {org}"
    for tab in ("profile", "password", "tokens", "robots", "quota"):
        pages[f"#/account?tab={tab}"] = f"Account {admin.username}"
    for tab in ("users", "organizations", "quotas", "keys", "size", "builds", "logs"):
        pages[f"#/superuser?tab={tab}"] = "Superuser panel"

    for hash_path, heading in pages.items():
        page.goto(f"{server.url}/{hash_path}")
        expect(page.get_by_role("heading", level=1)).to_contain_text(heading)
        expect(page.get_by_text("Loading…")).to_have_count(0)
        shown = page.locator("#main .error").all_inner_texts()
        assert shown == [], f"{hash_path}: {shown}"
    assert script_errors == []
