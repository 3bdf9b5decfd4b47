"""The web UI in a real browser against a live server: the superuser panel."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from tests.e2e.test_ui import sign_in
from tests.support.accounts import create_organization, create_user, unique
from tests.support.server import LiveServer


def test_superuser_manages_users_quota_keys_and_registry_size(page: Page, server_factory) -> None:
    # Quota limits may only be written by superusers with full access (as in current Quay).
    server: LiveServer = server_factory({"FEATURE_SUPERUSERS_FULL_ACCESS": True})
    admin = create_user(server, "admin")
    owner = create_user(server)
    org = create_organization(server, owner)
    sign_in(page, server, admin.username, admin.password)
    page.get_by_role("link", name="Superuser").click()

    newcomer = unique("made")
    page.get_by_label("Username").fill(newcomer)
    page.get_by_label("Email").fill(f"{newcomer}@example.com")
    page.get_by_role("button", name="Create user").click()
    expect(page.get_by_text(f"User {newcomer} created")).to_be_visible()
    assert len(page.get_by_label("Password").input_value()) >= 8
    expect(page.get_by_role("row").filter(has_text=newcomer)).to_have_count(1)

    page.goto(f"{server.url}/#/superuser?tab=quotas&namespace={org}")
    page.get_by_label("Quota in bytes").fill("1048576")
    page.get_by_role("button", name="Set quota").click()
    expect(page.get_by_text("Limit: 1.0 MiB")).to_be_visible()
    page.get_by_label("Threshold %").fill("90")
    page.get_by_role("button", name="Add limit").click()
    expect(page.get_by_role("row").filter(has_text="Reject")).to_have_count(1)

    page.goto(f"{server.url}/#/organization/{org}?tab=quota")
    expect(page.get_by_role("progressbar")).to_be_visible()
    expect(page.get_by_text(re.compile(r"of 1\.0 MiB used"))).to_be_visible()

    page.goto(f"{server.url}/#/superuser?tab=keys")
    page.get_by_label("Service").fill("uitest")
    page.get_by_label("Name", exact=True).fill("browser key")
    page.get_by_role("button", name="Create key").click()
    expect(
        page.get_by_text("BEGIN RSA PRIVATE KEY").or_(page.get_by_text("BEGIN PRIVATE KEY"))
    ).to_be_visible()
    expect(page.get_by_role("row").filter(has_text="browser key")).to_have_count(1)

    page.goto(f"{server.url}/#/superuser?tab=size")
    page.get_by_role("button", name="Recalculate").click()
    expect(page.get_by_role("status")).to_contain_text("Calculation queued")
