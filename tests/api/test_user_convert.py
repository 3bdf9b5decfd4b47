"""POST /api/v1/user/convert: an account becomes an organization run by another person."""

from __future__ import annotations

import httpx
from sqlalchemy import select

from cargohold.db.models.accounts import User
from tests.support.accounts import create_organization, create_user, unique
from tests.support.audit import log_entries
from tests.support.content import make_repository
from tests.support.server import LiveServer
from tests.support.sessions import after_login_failure, csrf_client, session_client, signin


def test_user_converts_to_an_organization_and_the_admin_is_signed_in(server: LiveServer) -> None:
    person = create_user(server, unique("becomesorg"))
    admin = create_user(server, unique("newadmin"))
    repo = make_repository(server, person.username)
    with session_client(server, person.username, person.password) as browser:
        converted = browser.post(
            "/api/v1/user/convert",
            json={"adminUser": admin.username, "adminPassword": admin.password, "plan": "free"},
        )
        assert converted.status_code == 200, converted.text
        assert converted.json() == {"success": True}
        # The browser is now the admin's session.
        assert browser.get("/api/v1/user/").json()["username"] == admin.username
        org = browser.get(f"/api/v1/organization/{person.username}")
        assert org.status_code == 200 and org.json()["is_admin"] is True
        assert browser.get(f"/api/v1/repository/{repo}").status_code == 200
    with csrf_client(server) as client:
        assert signin(client, person.username, person.password).status_code != 200
    assert log_entries(server, person.username, "account_convert") == [{}]


def test_convert_refusals(server: LiveServer) -> None:
    person = create_user(server, unique("staysuser"))
    admin = create_user(server, unique("wouldbeadmin"))
    with session_client(server, person.username, person.password) as browser:
        for body, detail in (
            ({"adminUser": admin.username, "adminPassword": "wrong"}, "not valid"),
            ({"adminUser": unique("ghost"), "adminPassword": "x"}, "not valid"),
            ({"adminUser": person.username, "adminPassword": person.password}, "is not valid"),
        ):
            refused = browser.post("/api/v1/user/convert", json=body)
            assert refused.status_code == 400
            assert refused.json()["error_type"] == "invalid_request"
            assert refused.json()["reason"] == "invaliduser"
            assert refused.json()["detail"].endswith(detail)
        missing = browser.post("/api/v1/user/convert", json={"adminUser": admin.username})
        assert missing.status_code == 400
        assert missing.json()["detail"] == "'adminPassword' is a required property"
        create_organization(server, person)
        # The wrong admin password above made that account back off for a moment.
        sole = after_login_failure(
            lambda: browser.post(
                "/api/v1/user/convert",
                json={"adminUser": admin.username, "adminPassword": admin.password},
            )
        )
        assert sole.status_code == 400
        assert "only admin" in sole.json()["message"]
        assert browser.get("/api/v1/user/").json()["username"] == person.username
    with server.db() as session:
        row = session.scalar(select(User).where(User.username == person.username))
        assert row.organization is False
    anonymous = httpx.post(f"{server.url}/api/v1/user/convert", json={})
    assert anonymous.status_code == 403
