"""Robot federation in the browser: identities added in the UI let a local issuer's token in."""

from __future__ import annotations

import json

import httpx
from playwright.sync_api import Page, expect
from sqlalchemy import select

from cargohold.db.models.accounts import RobotAccountToken, User
from tests.e2e.test_ui import sign_in
from tests.support.accounts import create_organization, create_user
from tests.support.oidc import ISSUER_HOST, LocalIssuer
from tests.support.server import LiveServer
from tests.support.teams import create_robot

SUBJECT = "repo:example/app:ref:refs/heads/main"


def _trade(server: LiveServer, robot: str, token: str) -> httpx.Response:
    return httpx.get(f"{server.url}/oauth2/federation/robot/token", auth=(robot, token), timeout=30)


def test_federation_settings_in_the_browser(page: Page, server_factory) -> None:
    server = server_factory({"SSRF_ALLOWED_HOSTS": [ISSUER_HOST]})
    owner = create_user(server)
    org = create_organization(server, owner)
    robot, _ = create_robot(server, org, "ci")
    script_errors: list[str] = []
    page.on("pageerror", lambda error: script_errors.append(str(error)))

    with LocalIssuer() as issuer:
        sign_in(page, server, owner.username, owner.password)
        page.goto(f"{server.url}/#/organization/{org}?tab=robots")
        page.get_by_role("button", name=f"Federation of {robot}").click()
        card = page.locator(
            ".card", has=page.get_by_role("heading", name=f"Federation for {robot}")
        )
        expect(card.get_by_text("No federated identities.")).to_be_visible()

        # The guard refuses a metadata address and the list stays as it was.
        card.get_by_label("Issuer URL").fill("http://169.254.169.254/")
        card.get_by_label("Subject").fill("anything")
        card.get_by_role("button", name="Add identity").click()
        expect(card.get_by_role("alert")).to_contain_text("is not allowed")
        expect(card.get_by_text("No federated identities.")).to_be_visible()

        card.get_by_label("Issuer URL").fill(issuer.url)
        card.get_by_label("Subject").fill(SUBJECT)
        card.get_by_role("button", name="Add identity").click()
        expect(card.get_by_role("cell", name=SUBJECT, exact=True)).to_be_visible()
        expect(card.get_by_role("cell", name="this registry", exact=True)).to_be_visible()

        card.get_by_label("Issuer URL").fill("http://127.0.0.3:2/k8s")
        card.get_by_label("Subject").fill("system:serviceaccount:ci:builder")
        card.get_by_label("Audiences (comma-separated, optional)").fill("pull, push")
        card.get_by_role("button", name="Add identity").click()
        expect(card.get_by_role("cell", name="pull, push", exact=True)).to_be_visible()

        stored = server_config(server, org)
        assert stored == [
            {"issuer": issuer.url, "subject": SUBJECT},
            {
                "issuer": "http://127.0.0.3:2/k8s",
                "subject": "system:serviceaccount:ci:builder",
                "audiences": ["pull", "push"],
            },
        ]
        # What the browser configured is what the exchange honours.
        traded = _trade(server, robot, issuer.token(SUBJECT, server.host))
        assert traded.status_code == 200, traded.text

        card.get_by_role("button", name="Remove system:serviceaccount:ci:builder").click()
        expect(card.get_by_role("cell", name="pull, push", exact=True)).to_have_count(0)
        assert len(server_config(server, org)) == 1

        page.once("dialog", lambda dialog: dialog.accept())
        card.get_by_role("button", name="Remove all").click()
        expect(card.get_by_text("No federated identities.")).to_be_visible()
        assert server_config(server, org) == []
        refused = _trade(server, robot, issuer.token(SUBJECT, server.host))
        assert refused.json() == {"error": "Robot does not have federated login configured"}
    assert script_errors == []


def server_config(server: LiveServer, org: str) -> list[dict]:
    """The robot's federation entries as stored."""
    with server.db() as session:
        stored = session.scalar(
            select(RobotAccountToken.federation_config)
            .join(User, User.id == RobotAccountToken.robot_id)
            .where(User.username == f"{org}+ci")
        )
    return json.loads(stored or "[]")
