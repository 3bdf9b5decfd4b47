"""Password recovery by mail: the request, the one-time link, and the superuser's send."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest
from sqlalchemy import select

from cargohold.db.models.accounts import User
from cargohold.db.models.confirmations import EmailConfirmation
from tests.support.accounts import (
    ALL_SCOPES,
    bearer_client,
    create_organization,
    create_user,
    issue_token,
    unique,
)
from tests.support.audit import log_entries
from tests.support.server import LiveServer
from tests.support.sessions import after_login_failure, csrf_client, signin
from tests.support.smtp import SmtpServer

LINK_RE = re.compile(r"http://\S+/recovery\?code=(\S+)")
INVALID = {"message": "Invalid recovery code: This code is invalid or may have already been used."}


@pytest.fixture(scope="module")
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def mail_server(tmp_path_factory, smtp: SmtpServer) -> Iterator[LiveServer]:
    live = LiveServer(
        tmp_path_factory.mktemp("recoveryserver"),
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


def _request(server: LiveServer, body: dict) -> httpx.Response:
    with csrf_client(server) as client:
        return client.post("/api/v1/recovery", json=body)


def _link_code(smtp: SmtpServer, recipient: str) -> str:
    message = smtp.wait_for(recipient, containing="/recovery?code=").message
    assert message["Subject"] == "Account recovery"
    match = LINK_RE.search(message.get_content())
    assert match, message.get_content()
    return match.group(1)


@contextmanager
def _follow(server: LiveServer, code: str) -> Iterator[tuple[httpx.Response, httpx.Client]]:
    """Open the mailed link in a fresh browser."""
    with httpx.Client(base_url=server.url, timeout=30) as browser:
        yield browser.get("/recovery", params={"code": code}), browser


def test_recovery_link_signs_in_once_to_set_a_new_password(mail_server, smtp) -> None:
    person = create_user(mail_server, unique("forgetful"))
    sent = _request(mail_server, {"email": person.email})
    assert sent.status_code == 200
    assert sent.json() == {"status": "sent"}
    code = _link_code(smtp, person.email)
    with _follow(mail_server, code) as (response, browser):
        assert response.status_code == 302
        assert response.headers["location"] == "/#/account"
        assert browser.get("/api/v1/user/").json()["username"] == person.username
        # The recovery login is fresh: the password changes without the old one.
        browser.headers["X-CSRF-Token"] = response.headers["X-Next-CSRF-Token"]
        changed = browser.put("/api/v1/user/", json={"password": "brand-new-secret"})
        assert changed.status_code == 200, changed.text
        again = browser.get("/recovery", params={"code": code})
        assert again.status_code == 400
        assert again.json() == INVALID
    with csrf_client(mail_server) as client:
        assert signin(client, person.username, person.password).status_code in (400, 403)
    with csrf_client(mail_server) as client:
        fresh = after_login_failure(lambda: signin(client, person.username, "brand-new-secret"))
        assert fresh.status_code == 200
    kinds = [entry["type"] for entry in log_entries(mail_server, person.username, "login_success")]
    assert kinds == ["recovery", "quayauth"]


def test_unknown_address_gets_the_same_answer_and_no_mail(mail_server, smtp) -> None:
    nobody = f"{unique('nobody')}@example.com"
    assert _request(mail_server, {"email": nobody}).json() == {"status": "sent"}
    # A later message arriving shows the worker went past the first request.
    person = create_user(mail_server, unique("later"))
    _request(mail_server, {"email": person.email})
    _link_code(smtp, person.email)
    assert smtp.messages_for(nobody) == []


def test_organization_address_names_its_admins_without_a_link(mail_server, smtp) -> None:
    admin = create_user(mail_server, unique("orgadmin"))
    org = create_organization(mail_server, admin, unique("recoverorg"))
    address = f"{unique('shared')}@example.com"
    with mail_server.db() as session:
        session.scalar(select(User).where(User.username == org)).email = address
    answer = _request(mail_server, {"email": address}).json()
    assert answer["status"] == "org" and answer["orgemail"] == address
    hint = answer["orgname"]
    assert len(hint) == len(org) and "\u2022" in hint
    assert hint[:2] == org[:2] and hint[-2:] == org[-2:]
    text = smtp.wait_for(address, containing=org).text
    assert admin.username in text
    assert "/recovery?code=" not in text


def test_codes_expire_and_do_not_confirm_addresses(mail_server, smtp) -> None:
    person = create_user(mail_server, unique("slow"))
    _request(mail_server, {"email": person.email})
    code = _link_code(smtp, person.email)
    with httpx.Client(base_url=mail_server.url) as browser:
        # A recovery code is no address confirmation: the UI page, as for any unknown code.
        page = browser.get("/confirm", params={"code": code})
        assert page.status_code == 200 and "set-cookie" not in page.headers
        assert browser.get("/api/v1/user/").status_code == 401
    with mail_server.db() as session:
        for record in session.scalars(
            select(EmailConfirmation).where(EmailConfirmation.pw_reset.is_(True))
        ):
            record.created -= dt.timedelta(hours=1)
    with _follow(mail_server, code) as (response, browser):
        assert response.status_code == 400
        assert response.json() == INVALID
        assert browser.get("/api/v1/user/").status_code == 401
    for params in ({}, {"code": ""}, {"code": "not-a-code"}):
        with httpx.Client(base_url=mail_server.url) as browser:
            assert browser.get("/recovery", params=params).status_code == 400


def test_recovery_request_validation(mail_server) -> None:
    missing = _request(mail_server, {})
    assert missing.status_code == 400
    assert missing.json()["detail"] == "'email' is a required property"
    wrong = _request(mail_server, {"email": 12})
    assert wrong.status_code == 400
    assert wrong.json()["detail"] == "12 is not of type 'string'"
    no_csrf = httpx.post(f"{mail_server.url}/api/v1/recovery", json={"email": "a@example.com"})
    assert no_csrf.status_code == 403


def test_superuser_sends_a_recovery_link(mail_server, smtp) -> None:
    create_user(mail_server, "admin")
    person = create_user(mail_server, unique("helped"))
    stranger = create_user(mail_server, unique("stranger"))
    url = f"/api/v1/superusers/users/{person.username}/sendrecovery"
    with bearer_client(mail_server, issue_token(mail_server, "admin", ALL_SCOPES)) as admin:
        sent = admin.post(url)
        assert sent.status_code == 200
        assert sent.json() == {"email": person.email}
        refused = admin.post("/api/v1/superusers/users/admin/sendrecovery")
        assert refused.status_code == 400
        assert refused.json()["detail"] == "Cannot send a recovery email for a superuser"
        missing = admin.post(f"/api/v1/superusers/users/{unique('ghost')}/sendrecovery")
        assert missing.status_code == 404
    code = _link_code(smtp, person.email)
    with _follow(mail_server, code) as (response, browser):
        assert response.status_code == 302
        assert browser.get("/api/v1/user/").json()["username"] == person.username
    with bearer_client(mail_server, issue_token(mail_server, stranger.username, ALL_SCOPES)) as c:
        assert c.post(url).status_code == 403


def test_recovery_needs_mailing(server: LiveServer, admin, user_client) -> None:
    with csrf_client(server) as client:
        assert client.post("/api/v1/recovery", json={"email": "a@example.com"}).status_code == 404
    assert httpx.get(f"{server.url}/recovery", params={"code": "x"}).status_code == 404
    with bearer_client(server, issue_token(server, "admin", ALL_SCOPES)) as superuser:
        sent = superuser.post("/api/v1/superusers/users/someone/sendrecovery")
        assert sent.status_code == 404
