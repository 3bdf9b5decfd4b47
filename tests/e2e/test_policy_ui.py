"""The web UI in a real browser: tag policies of an organization, a repository and the user."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.test_ui import sign_in
from tests.support.accounts import (
    ALL_SCOPES,
    bearer_client,
    create_organization,
    create_user,
    issue_token,
)
from tests.support.content import make_repository
from tests.support.server import LiveServer

pytestmark = pytest.mark.slow


def test_policies_are_created_edited_and_deleted(page: Page, server: LiveServer) -> None:
    owner = create_user(server)
    org = create_organization(server, owner)
    repo = make_repository(server, org)
    script_errors: list[str] = []
    page.on("pageerror", lambda error: script_errors.append(str(error)))
    sign_in(page, server, owner.username, owner.password)

    page.goto(f"{server.url}/#/organization/{org}?tab=policies")
    expect(page.get_by_text("No auto-prune policies.")).to_be_visible()
    prune_form = page.locator("form").nth(0)
    # A malformed policy shows Quay's message and stores nothing.
    prune_form.get_by_label("Value (a number of tags, or a duration such as 7d or 2w)").fill("-3")
    prune_form.get_by_role("button", name="Save policy").click()
    expect(prune_form.get_by_role("alert")).to_have_text("Invalid value given for method type")

    prune_form.get_by_label("Value (a number of tags, or a duration such as 7d or 2w)").fill("5")
    prune_form.get_by_label("Tag pattern (regular expression, optional for auto-prune)").fill(
        "^dev-"
    )
    prune_form.get_by_role("button", name="Save policy").click()
    row = page.get_by_role("row").filter(has_text="Keep the newest 5 tags")
    expect(row).to_contain_text("matching ^dev-")

    row.get_by_role("button", name="Edit Keep the newest 5 tags (matching ^dev-)").click()
    prune_form.get_by_label("Method").select_option("creation_date")
    prune_form.get_by_label("Value (a number of tags, or a duration such as 7d or 2w)").fill("2w")
    prune_form.get_by_role("button", name="Save policy").click()
    edited = page.get_by_role("row").filter(has_text="Remove tags older than 2w")
    expect(edited).to_contain_text("matching ^dev-")
    expect(page.get_by_role("row").filter(has_text="Keep the newest 5 tags")).to_have_count(0)

    immutability_form = page.locator("form").nth(1)
    immutability_form.get_by_label(
        "Tag pattern (regular expression, optional for auto-prune)"
    ).fill("v(1")
    immutability_form.get_by_role("button", name="Save policy").click()
    expect(immutability_form.get_by_role("alert")).to_contain_text("Invalid regex pattern")
    immutability_form.get_by_label(
        "Tag pattern (regular expression, optional for auto-prune)"
    ).fill("^v[0-9]+$")
    immutability_form.get_by_role("button", name="Save policy").click()
    expect(page.get_by_role("row").filter(has_text="Tags are immutable")).to_contain_text(
        "matching ^v[0-9]+$"
    )

    with bearer_client(server, issue_token(server, owner.username, ALL_SCOPES)) as api:
        stored = api.get(f"/api/v1/organization/{org}/autoprunepolicy/").json()["policies"]
        assert [(p["method"], p["value"], p["tagPattern"]) for p in stored] == [
            ("creation_date", "2w", "^dev-")
        ]
        immutable = api.get(f"/api/v1/organization/{org}/immutabilitypolicy/").json()
        assert [p["tagPattern"] for p in immutable["policies"]] == ["^v[0-9]+$"]

    page.once("dialog", lambda dialog: dialog.accept())
    edited.get_by_role("button", name="Delete Remove tags older than 2w (matching ^dev-)").click()
    expect(page.get_by_text("No auto-prune policies.")).to_be_visible()

    page.goto(f"{server.url}/#/repository/{repo}?tab=policies")
    expect(page.get_by_text("No immutability policies.")).to_be_visible()
    page.locator("form").nth(0).get_by_label(
        "Value (a number of tags, or a duration such as 7d or 2w)"
    ).fill("3")
    page.locator("form").nth(0).get_by_role("button", name="Save policy").click()
    expect(page.get_by_role("row").filter(has_text="Keep the newest 3 tags")).to_contain_text(
        "all tags"
    )

    page.goto(f"{server.url}/#/account?tab=policies")
    expect(page.get_by_text("Immutability policies")).to_have_count(0)
    page.get_by_label("Value (a number of tags, or a duration such as 7d or 2w)").fill("4")
    page.get_by_role("button", name="Save policy").click()
    expect(page.get_by_role("row").filter(has_text="Keep the newest 4 tags")).to_be_visible()
    assert script_errors == []
