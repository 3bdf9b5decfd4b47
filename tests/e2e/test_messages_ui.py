"""The web UI in a real browser: the global message banner and its superuser editor."""

from __future__ import annotations

import httpx
from playwright.sync_api import Browser, Page, expect

from tests.e2e.test_ui import sign_in
from tests.support.accounts import create_user
from tests.support.server import LiveServer

HOSTILE = '<img src=x onerror="window.__injected = 1"> Registry upgrade at noon'


def test_superuser_posts_a_banner_every_visitor_sees_then_deletes_it(
    page: Page, browser: Browser, server_factory
) -> None:
    server: LiveServer = server_factory()
    admin = create_user(server, "admin")
    sign_in(page, server, admin.username, admin.password)
    page.goto(f"{server.url}/#/superuser?tab=messages")
    expect(page.get_by_text("No messages.")).to_be_visible()
    page.get_by_label("Message").fill(HOSTILE)
    page.get_by_label("Severity").select_option("warning")
    page.get_by_role("button", name="Post message").click()
    expect(page.get_by_role("status")).to_contain_text("Message posted.")

    banner = page.locator("#messages .message-banner")
    expect(banner).to_have_count(1)
    expect(banner).to_have_text(f"Warning: {HOSTILE}")
    expect(banner).to_have_class("message-banner warning")
    # The message is text: its markup was not turned into an element, its script never ran.
    expect(page.locator("#messages img")).to_have_count(0)
    assert page.evaluate("window.__injected") is None
    expect(page.get_by_role("row").filter(has_text="Registry upgrade")).to_have_count(1)

    visitor = browser.new_context().new_page()
    visitor.goto(server.url + "/")
    expect(visitor.locator("#messages .message-banner")).to_have_text(f"Warning: {HOSTILE}")
    visitor.context.close()

    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("row").filter(has_text="Registry upgrade").get_by_role(
        "button", name="Delete"
    ).click()
    expect(page.get_by_text("No messages.")).to_be_visible()
    expect(page.locator("#messages .message-banner")).to_have_count(0)
    assert httpx.get(server.url + "/api/v1/messages").json() == {"messages": []}


def test_users_see_banners_but_not_the_editor(page: Page, server_factory) -> None:
    server: LiveServer = server_factory()
    admin = create_user(server, "admin")
    someone = create_user(server)
    token_body = {
        "message": {"content": "Read-only weekend", "media_type": "text/plain", "severity": "error"}
    }
    with httpx.Client(base_url=server.url) as client:
        client.headers["X-CSRF-Token"] = client.get("/csrf_token").json()["csrf_token"]
        signed_in = client.post(
            "/api/v1/signin", json={"username": admin.username, "password": admin.password}
        )
        client.headers["X-CSRF-Token"] = signed_in.headers["X-Next-CSRF-Token"]
        assert client.post("/api/v1/messages", json=token_body).status_code == 201
    sign_in(page, server, someone.username, someone.password)
    expect(page.locator("#messages .message-banner.error")).to_have_text("Error: Read-only weekend")
    page.goto(f"{server.url}/#/superuser?tab=messages")
    expect(page.get_by_text("This page is for superusers only")).to_be_visible()
    expect(page.get_by_role("button", name="Post message")).to_have_count(0)
