"""The web UI in a real browser: a repository's notification settings."""

from __future__ import annotations

import time

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.test_ui import sign_in
from tests.support.accounts import ALL_SCOPES, bearer_client, create_user, issue_token
from tests.support.content import make_repository
from tests.support.webhook import webhook_listener

pytestmark = pytest.mark.slow


def test_notifications_are_created_tested_reset_and_deleted(page: Page, server_factory) -> None:
    live = server_factory({"SSRF_ALLOWED_HOSTS": ["127.0.0.2"], "NOTIFICATION_RETRY_DELAY_SEC": 1})
    owner = create_user(live)
    repo = make_repository(live, owner.username)
    script_errors: list[str] = []
    page.on("pageerror", lambda error: script_errors.append(str(error)))
    sign_in(page, live, owner.username, owner.password)
    page.goto(f"{live.url}/#/repository/{repo}?tab=notifications")
    expect(page.get_by_text("No notifications yet.")).to_be_visible()

    # A blocked target is refused with Quay's message and nothing is created.
    page.get_by_label("Webhook or Slack URL").fill("http://127.0.0.1:9/hook")
    page.get_by_role("button", name="Create notification").click()
    expect(page.get_by_role("alert")).to_have_text("Invalid webhook URL")

    with webhook_listener() as listener:
        page.get_by_label("Title (optional)").fill("Deploy hook")
        page.get_by_label("Webhook or Slack URL").fill(f"{listener.url}/deploy")
        page.get_by_role("button", name="Create notification").click()
        row = page.get_by_role("row").filter(has_text="Deploy hook")
        expect(row).to_contain_text("Push to repository")
        expect(row).to_contain_text(f"{listener.url}/deploy")
        page.get_by_role("button", name="Test Deploy hook").click()
        expect(page.get_by_text("Test notification queued.")).to_be_visible()
        body = listener.wait_for(1, path="/deploy")[0].body
        assert body["repository"] == repo
        assert body["updated_tags"] == ["latest", "foo"]

        # Failing deliveries show up as failures, and the reset button clears them.
        listener.status = 500
        page.get_by_role("button", name="Test Deploy hook").click()
        listener.wait_for(2, path="/deploy")
        deadline = time.monotonic() + 30
        with bearer_client(live, issue_token(live, owner.username, ALL_SCOPES)) as api:
            while time.monotonic() < deadline:
                listed = api.get(f"/api/v1/repository/{repo}/notification/").json()
                if listed["notifications"][0]["number_of_failures"] > 0:
                    break
                time.sleep(0.2)
        page.reload()
        expect(row.get_by_role("button", name="Reset failures of Deploy hook")).to_be_visible()
        row.get_by_role("button", name="Reset failures of Deploy hook").click()
        expect(page.get_by_text("Failures reset.")).to_be_visible()
        expect(row.locator("td").nth(4)).to_have_text("0")

    page.get_by_label("When").select_option("repo_image_expiry")
    page.get_by_label("Days before expiry (image expiring)").fill("3")
    page.get_by_label("Then").select_option("quay_notification")
    page.get_by_label("User, team or organization name").fill(owner.username)
    page.get_by_role("button", name="Create notification").click()
    expiry = page.get_by_role("row").filter(has_text="Image expiring (3 days)")
    expect(expiry).to_contain_text(f"User {owner.username}")

    page.once("dialog", lambda dialog: dialog.accept())
    row.get_by_role("button", name="Delete Deploy hook").click()
    expect(page.get_by_role("row").filter(has_text="Deploy hook")).to_have_count(0)
    expect(expiry).to_have_count(1)
    assert script_errors == []
