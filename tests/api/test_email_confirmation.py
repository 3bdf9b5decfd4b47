"""With FEATURE_MAILING: new accounts and changed addresses are confirmed by a mailed link."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest

from tests.support.accounts import ALL_SCOPES, bearer_client, create_user, issue_token, unique
from tests.support.audit import log_entries
from tests.support.server import LiveServer
from tests.support.sessions import csrf_client, signin
from tests.support.smtp import SmtpServer

LINK_RE = re.compile(r"http://\S+/confirm\?code=(\S+)")


@pytest.fixture(scope="module")
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def mail_server(tmp_path_factory, smtp: SmtpServer) -> Iterator[LiveServer]:
    live = LiveServer(
        tmp_path_factory.mktemp("confirmserver"),
        {
            "FEATURE_MAILING": True,
            "MAIL_SERVER": "127.0.0.1",
            "MAIL_PORT": smtp.port,
            "MAIL_USE_TLS": False,
            "MAIL_DEFAULT_SENDER": "registry@example.com",
        },
    ).start()
    yield live
    live.destroy()


def _code(smtp: SmtpServer, recipient: str, subject: str = "Please confirm") -> str:
    message = smtp.wait_for(recipient).message
    assert message["Subject"].startswith(subject)
    match = LINK_RE.search(message.get_content())
    assert match, message.get_content()
    return match.group(1)


def test_new_account_confirms_by_link(mail_server, smtp) -> None:
    name = unique("mailed")
    address = f"{name}@example.com"
    with csrf_client(mail_server) as client:
        missing = client.post("/api/v1/user/", json={"username": name, "password": "longenough1"})
        assert missing.status_code == 400
        assert missing.json()["detail"] == "Email address is required"
        response = client.post(
            "/api/v1/user/", json={"username": name, "password": "longenough1", "email": address}
        )
        assert response.status_code == 200
        assert response.json() == {"awaiting_verification": True}
        refused = signin(client, name, "longenough1")
        assert refused.status_code == 403
        assert refused.json()["needsEmailVerification"] is True
    code = _code(smtp, address)
    with httpx.Client(base_url=mail_server.url) as browser:
        response = browser.get("/confirm", params={"code": code})
        assert response.status_code == 302
        assert response.headers["location"] == "/"
        view = browser.get("/api/v1/user/").json()
        assert view["username"] == name and view["verified"] is True
        again = browser.get("/confirm", params={"code": code})
        assert again.status_code == 200
        assert again.headers["content-type"].startswith("text/html")
        assert again.text == browser.get("/").text
    with csrf_client(mail_server) as client:
        assert signin(client, name, "longenough1").status_code == 200


def test_changed_address_applies_after_confirmation(mail_server, smtp) -> None:
    person = create_user(mail_server)
    new_address = f"{unique('moved')}@example.org"
    with bearer_client(
        mail_server, issue_token(mail_server, person.username, ALL_SCOPES)
    ) as client:
        bad = client.put("/api/v1/user/", json={"email": "not-an-address"})
        assert bad.status_code == 400
        response = client.put("/api/v1/user/", json={"email": new_address})
        assert response.status_code == 200
        assert response.json()["email"] == person.email
        code = _code(smtp, new_address)
        with httpx.Client(base_url=mail_server.url) as browser:
            confirmed = browser.get("/confirm", params={"code": code})
            assert confirmed.status_code == 302
            assert confirmed.headers["location"] == "/user/?tab=settings"
        assert client.get("/api/v1/user/").json()["email"] == new_address
    notice = smtp.wait_for(person.email).message
    assert notice["Subject"] == "Your e-mail address was changed"
    assert log_entries(mail_server, person.username, "user_change_email") == [
        {"email": new_address, "old_email": person.email}
    ]


def test_superuser_created_user_gets_confirmation(mail_server, smtp) -> None:
    create_user(mail_server, "admin")
    name = unique("installed")
    address = f"{name}@example.com"
    with bearer_client(mail_server, issue_token(mail_server, "admin", ALL_SCOPES)) as su:
        missing = su.post("/api/v1/superuser/users/", json={"username": unique("noaddr")})
        assert missing.status_code == 400
        assert missing.json() == {"message": "Invalid email address: None"}
        created = su.post("/api/v1/superuser/users/", json={"username": name, "email": address})
        assert created.status_code == 200
        assert su.get(f"/api/v1/superuser/users/{name}").json()["verified"] is False
    _code(smtp, address)


def test_confirm_without_or_with_unknown_code(mail_server) -> None:
    with httpx.Client(base_url=mail_server.url) as browser:
        assert browser.get("/confirm").json() == {"message": "Invalid confirmation code."}
        unknown = browser.get("/confirm", params={"code": "nope"})
        assert unknown.status_code == 200 and "set-cookie" not in unknown.headers
        assert unknown.text == browser.get("/").text
