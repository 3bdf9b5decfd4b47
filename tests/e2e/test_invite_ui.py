"""The web UI in a real browser: a team invitation mailed over SMTP, accepted from its link."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from tests.support.accounts import (
    ALL_SCOPES,
    bearer_client,
    create_organization,
    create_user,
    issue_token,
)
from tests.support.smtp import SmtpServer


def test_invitation_link_from_the_mail_is_accepted_in_the_browser(
    page: Page, server_factory
) -> None:
    smtp = SmtpServer().start()
    try:
        server = server_factory(
            {
                "FEATURE_MAILING": True,
                "MAIL_SERVER": "127.0.0.1",
                "MAIL_PORT": smtp.port,
                "MAIL_USE_TLS": False,
            }
        )
        owner = create_user(server)
        invitee = create_user(server)
        org = create_organization(server, owner)
        with bearer_client(server, issue_token(server, owner.username, ALL_SCOPES)) as client:
            assert (
                client.put(
                    f"/api/v1/organization/{org}/team/crew", json={"role": "member"}
                ).status_code
                == 200
            )
            added = client.put(f"/api/v1/organization/{org}/team/crew/members/{invitee.username}")
            assert added.json()["invited"] is True

        mail = smtp.wait_for(invitee.email)
        link = re.search(rf"{re.escape(server.url)}/confirminvite\?code=\S+", mail.text).group(0)
        page.goto(link)
        expect(page.get_by_role("heading", name="Team invitation")).to_be_visible()
        page.locator("#main").get_by_role("link", name="Sign in").click()
        page.get_by_label("Username or email").fill(invitee.username)
        page.get_by_label("Password").fill(invitee.password)
        page.get_by_role("button", name="Sign in").click()
        page.get_by_role("button", name="Accept invitation").click()
        expect(page.get_by_role("heading", name="Team crew")).to_be_visible()
        expect(page.get_by_role("row").filter(has_text=invitee.username)).to_have_count(1)
    finally:
        smtp.stop()
