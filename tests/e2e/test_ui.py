"""The web UI in a real browser against a live server."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from tests.support.accounts import create_organization, create_user, unique
from tests.support.server import LiveServer


def sign_in(page: Page, server: LiveServer, username: str, password: str) -> None:
    page.goto(f"{server.url}/#/signin")
    page.get_by_label("Username or email").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("link", name=username, exact=True)).to_be_visible()


def test_sign_up_then_create_org_team_robot_and_repository(page: Page, server: LiveServer) -> None:
    username = unique("ui")
    org = unique("uiorg")
    page.goto(f"{server.url}/#/signup")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Email").fill(f"{username}@example.com")
    page.get_by_label("Password (at least 8 characters)").fill("correct-horse")
    page.get_by_role("button", name="Create account").click()
    expect(page.get_by_role("link", name=username, exact=True)).to_be_visible()

    page.get_by_role("link", name="Create organization").click()
    page.get_by_label("Name", exact=True).fill(org)
    page.get_by_role("button", name="Create").click()
    expect(page.get_by_role("heading", name=f"Organization {org}")).to_be_visible()
    expect(page.get_by_role("link", name="owners")).to_be_visible()

    page.get_by_label("Team name").fill("builders")
    page.get_by_label("Role").select_option("creator")
    page.get_by_role("button", name="Create team").click()
    expect(page.get_by_role("heading", name="Team builders")).to_be_visible()

    page.get_by_role("link", name="Robot accounts").click()
    page.get_by_label("Robot name").fill("deployer")
    page.get_by_role("button", name="Create robot").click()
    expect(page.get_by_text(f"{org}+deployer")).to_be_visible()
    page.get_by_role("button", name="Show token").click()
    token = page.get_by_label("Token").input_value()
    assert re.fullmatch(r"[A-Z0-9]{64}", token)

    page.goto(f"{server.url}/#/new-repository")
    page.get_by_label("Namespace").select_option(org)
    page.get_by_label("Name", exact=True).fill("webapp")
    page.get_by_label("Description").fill("made in the browser")
    page.get_by_role("button", name="Create").click()
    expect(page.get_by_role("heading", name=f"{org}/webapp")).to_be_visible()
    expect(page.get_by_text("made in the browser")).to_be_visible()
    expect(page.get_by_label("podman")).to_have_value(re.compile(rf"podman pull .*/{org}/webapp"))


def test_private_repository_and_admin_pages_are_refused_to_strangers(
    page: Page, server: LiveServer
) -> None:
    owner = create_user(server)
    stranger = create_user(server)
    org = create_organization(server, owner)
    with server.db() as session:
        from cargohold.db.models.accounts import User
        from cargohold.db.models.registry import Repository

        namespace = session.query(User).filter_by(username=org).one()
        session.add(Repository(namespace_user_id=namespace.id, name="secret", public=False))

    sign_in(page, server, stranger.username, stranger.password)
    page.goto(f"{server.url}/#/repository/{org}/secret")
    expect(page.get_by_role("alert")).to_contain_text(
        "does not exist or you are not allowed to see it"
    )
    page.goto(f"{server.url}/#/?view=public")
    expect(page.get_by_text(f"{org}/secret")).to_have_count(0)
    page.goto(f"{server.url}/#/superuser")
    expect(page.get_by_role("alert")).to_contain_text("superusers only")
    expect(page.get_by_role("link", name="Superuser")).to_have_count(0)
