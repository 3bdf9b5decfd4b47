"""Team invitations with mailing on: invite emails really go through an SMTP server."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import httpx
import pytest

from cargohold.domain.avatars import avatar
from tests.support.accounts import ALL_SCOPES, bearer_client, create_user, issue_token, unique
from tests.support.server import LiveServer
from tests.support.sessions import csrf_client, signin
from tests.support.smtp import SmtpServer
from tests.support.teams import (
    OrgWorld,
    audit_entries,
    create_team,
    org_world,
    passwordless_user,
    team_member_names,
)

CSRF = {"error": "CSRF token was invalid or missing."}
INVALID_CODE = {"message": "Invalid confirmation code."}


@pytest.fixture(scope="module")
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def mail_server(tmp_path_factory, smtp: SmtpServer) -> Iterator[LiveServer]:
    live = LiveServer(
        tmp_path_factory.mktemp("mailserver"),
        {
            "FEATURE_MAILING": True,
            "MAIL_SERVER": "127.0.0.1",
            "MAIL_PORT": smtp.port,
            "MAIL_USE_TLS": False,
            "MAIL_DEFAULT_SENDER": "registry@example.com",
            "REGISTRY_TITLE_SHORT": "Harbourmaster",
            "SUPER_USERS": ["admin"],
            "FEATURE_SUPERUSERS_FULL_ACCESS": True,
            "GLOBAL_READONLY_SUPER_USERS": ["auditor"],
        },
    ).start()
    yield live
    live.destroy()


@pytest.fixture(scope="module")
def superusers(mail_server: LiveServer) -> dict[str, httpx.Client]:
    clients = {}
    for name in ("admin", "auditor"):
        create_user(mail_server, name)
        clients[name] = bearer_client(mail_server, issue_token(mail_server, name, ALL_SCOPES))
    yield clients
    for client in clients.values():
        client.close()


@pytest.fixture
def world(mail_server: LiveServer, smtp: SmtpServer) -> Iterator[OrgWorld]:
    smtp.set_mode("accept")
    with org_world(mail_server) as built:
        yield built
    smtp.release()


def _client_for(server: LiveServer, username: str) -> httpx.Client:
    return bearer_client(server, issue_token(server, username, ALL_SCOPES))


def _invite_code(text: str, server: LiveServer) -> str:
    match = re.search(rf"{re.escape(server.url)}/confirminvite\?code=(\S+)", text)
    assert match, text
    return match.group(1)


def _pending(world: OrgWorld, team: str) -> list[dict]:
    response = world.client("owner").get(
        f"/api/v1/organization/{world.org}/team/{team}/members", params={"includePending": "true"}
    )
    return [member for member in response.json()["members"] if member["invited"]]


def test_outsider_is_invited_by_email_and_accepts(
    mail_server: LiveServer, smtp: SmtpServer, world: OrgWorld
) -> None:
    owner = world.client("owner")
    outsider = world.outsider
    added = owner.put(f"/api/v1/organization/{world.org}/team/readers/members/{outsider.username}")
    assert added.status_code == 200
    assert added.json() == {
        "name": outsider.username,
        "kind": "user",
        "is_robot": False,
        "avatar": avatar(mail_server.settings, outsider.username, outsider.email, "user"),
        "invited": True,
    }
    assert outsider.username not in team_member_names(mail_server, world.org, "readers")
    assert audit_entries(mail_server, world.org, "org_invite_team_member") == [
        {"user": outsider.username, "member": outsider.username, "team": "readers"}
    ]
    assert _pending(world, "readers") == [added.json()]
    members_path = f"/api/v1/organization/{world.org}/team/readers/members"
    # Pending invites are for admins who ask for them.
    assert [m["invited"] for m in owner.get(members_path).json()["members"]] == [False]
    as_reader = world.client("reader").get(members_path, params={"includePending": "1"})
    assert [m["invited"] for m in as_reader.json()["members"]] == [False]
    assert (
        owner.get(members_path, params={"includePending": "false"}).json()["members"]
        == (owner.get(members_path).json()["members"])
    )

    mail = smtp.wait_for(outsider.email)
    assert mail.message["Subject"] == "[Harbourmaster] Invitation to join team"
    assert mail.message["From"] == "registry@example.com"
    assert world.owner.username in mail.text
    assert world.org in mail.text and "readers" in mail.text
    code = _invite_code(mail.text, mail_server)

    wrong_user = world.client("reader").put(f"/api/v1/teaminvite/{code}")
    assert wrong_user.status_code == 400
    assert wrong_user.json() == {
        "message": f'This invite is intended for user "{outsider.username}". '
        "Please login to that account and try again."
    }
    assert world.client("reader").delete(f"/api/v1/teaminvite/{code}").json() == INVALID_CODE
    assert world.client("anonymous").put(f"/api/v1/teaminvite/{code}").json() == CSRF
    assert world.client("robot").put(f"/api/v1/teaminvite/{code}").json() == CSRF
    narrow = issue_token(mail_server, outsider.username, "repo:read user:read")
    with bearer_client(mail_server, narrow) as client:
        assert client.put(f"/api/v1/teaminvite/{code}").status_code == 403

    accepted = world.client("outsider").put(f"/api/v1/teaminvite/{code}")
    assert accepted.status_code == 200
    assert accepted.json() == {"org": world.org, "team": "readers"}
    assert outsider.username in team_member_names(mail_server, world.org, "readers")
    assert _pending(world, "readers") == []
    assert audit_entries(mail_server, world.org, "org_team_member_invite_accepted") == [
        {"member": outsider.username, "team": "readers", "inviter": world.owner.username}
    ]
    again = world.client("outsider").put(f"/api/v1/teaminvite/{code}")
    assert again.status_code == 400
    assert again.json() == INVALID_CODE


def test_accepting_one_invite_joins_every_invited_team(
    mail_server: LiveServer, smtp: SmtpServer, world: OrgWorld
) -> None:
    create_team(mail_server, world.org, "writers")
    owner = world.client("owner")
    for team in ("readers", "writers"):
        response = owner.put(
            f"/api/v1/organization/{world.org}/team/{team}/members/{world.outsider.username}"
        )
        assert response.json()["invited"] is True
    smtp_deadline = time.monotonic() + 30
    while len(smtp.messages_for(world.outsider.email)) < 2 and time.monotonic() < smtp_deadline:
        time.sleep(0.1)
    first, second = smtp.messages_for(world.outsider.email)[:2]
    assert _invite_code(first.text, mail_server) != _invite_code(second.text, mail_server)
    response = world.client("outsider").put(
        f"/api/v1/teaminvite/{_invite_code(first.text, mail_server)}"
    )
    assert response.status_code == 200
    for team in ("readers", "writers"):
        assert world.outsider.username in team_member_names(mail_server, world.org, team)
        assert _pending(world, team) == []
    # Once in the organization, people are added directly.
    direct = owner.put(
        f"/api/v1/organization/{world.org}/team/owners/members/{world.reader.username}"
    )
    assert direct.json()["invited"] is False
    assert world.reader.username in team_member_names(mail_server, world.org, "owners")


def test_invitee_declines(mail_server: LiveServer, smtp: SmtpServer, world: OrgWorld) -> None:
    owner = world.client("owner")
    owner.put(f"/api/v1/organization/{world.org}/team/readers/members/{world.outsider.username}")
    code = _invite_code(smtp.wait_for(world.outsider.email).text, mail_server)
    assert world.client("reader").delete(f"/api/v1/teaminvite/{code}").json() == INVALID_CODE
    assert world.client("anonymous").delete(f"/api/v1/teaminvite/{code}").json() == CSRF
    declined = world.client("outsider").delete(f"/api/v1/teaminvite/{code}")
    assert declined.status_code == 204
    assert declined.content == b""
    assert _pending(world, "readers") == []
    assert world.outsider.username not in team_member_names(mail_server, world.org, "readers")
    assert world.client("outsider").delete(f"/api/v1/teaminvite/{code}").json() == INVALID_CODE
    assert world.client("outsider").put(f"/api/v1/teaminvite/{code}").json() == INVALID_CODE
    assert audit_entries(mail_server, world.org, "org_team_member_invite_declined") == [
        {"member": world.outsider.username, "team": "readers", "inviter": world.owner.username}
    ]
    assert world.client("outsider").put("/api/v1/teaminvite/urn:teaminvite:unknown").json() == (
        INVALID_CODE
    )


def test_deleting_an_invitee_withdraws_the_invite(mail_server: LiveServer, world: OrgWorld) -> None:
    owner = world.client("owner")
    path = f"/api/v1/organization/{world.org}/team/readers/members/{world.outsider.username}"
    owner.put(path)
    owner.put(path)
    assert len(_pending(world, "readers")) == 2
    assert owner.delete(path).status_code == 204
    assert _pending(world, "readers") == []
    assert audit_entries(mail_server, world.org, "org_delete_team_member_invite") == [
        {"user": world.outsider.username, "team": "readers", "member": world.outsider.username}
    ]
    missing = owner.delete(path)
    assert missing.status_code == 400


def test_email_invites(mail_server: LiveServer, smtp: SmtpServer, world: OrgWorld) -> None:
    owner = world.client("owner")
    carol = passwordless_user(mail_server)
    base = f"/api/v1/organization/{world.org}/team/readers/invite"
    invited = owner.put(f"{base}/{carol.email}")
    assert invited.status_code == 200
    assert invited.json() == {
        "email": carol.email,
        "kind": "invite",
        "avatar": avatar(mail_server.settings, carol.email, carol.email, "user"),
        "invited": True,
    }
    assert _pending(world, "readers") == [invited.json()]
    assert audit_entries(mail_server, world.org, "org_invite_team_member") == [
        {"email": carol.email, "member": carol.email, "team": "readers"}
    ]
    code = _invite_code(smtp.wait_for(carol.email).text, mail_server)
    other = world.client("outsider").put(f"/api/v1/teaminvite/{code}")
    assert other.status_code == 400
    assert other.json() == {
        "message": f'This invite is intended for email "{carol.email}". '
        "Please login to that account and try again."
    }
    # Email invites can only be accepted, never declined, and only by the address's owner.
    with _client_for(mail_server, carol.username) as carol_client:
        assert carol_client.delete(f"/api/v1/teaminvite/{code}").json() == INVALID_CODE
        accepted = carol_client.put(f"/api/v1/teaminvite/{code}")
    assert accepted.json() == {"org": world.org, "team": "readers"}
    assert carol.username in team_member_names(mail_server, world.org, "readers")

    stranger = "someone@example.org"
    assert owner.put(f"{base}/{stranger}").status_code == 200
    assert owner.delete(f"{base}/{stranger}").status_code == 204
    assert _pending(world, "readers") == []
    assert audit_entries(mail_server, world.org, "org_delete_team_member_invite") == [
        {"email": stranger, "team": "readers", "member": stranger}
    ]
    gone = owner.delete(f"{base}/{stranger}")
    assert gone.status_code == 404
    assert gone.json()["title"] == "not_found"
    bad = owner.put(f"{base}/not-an-email")
    assert bad.status_code == 400
    assert bad.json()["detail"] == "Invalid email address"
    assert (
        owner.put(f"/api/v1/organization/{world.org}/team/nope/invite/{stranger}").status_code
        == 404
    )
    for who in ("reader", "outsider"):
        assert world.client(who).put(f"{base}/{stranger}").status_code == 403
        assert world.client(who).delete(f"{base}/{stranger}").status_code == 403
    for who in ("anonymous", "robot"):
        assert world.client(who).put(f"{base}/{stranger}").json() == CSRF
    assert _pending(world, "readers") == []


def test_failing_mail_server_does_not_fail_the_invite(
    mail_server: LiveServer, smtp: SmtpServer, world: OrgWorld
) -> None:
    smtp.set_mode("refuse")
    refused_before = smtp.handler.refused
    response = world.client("owner").put(
        f"/api/v1/organization/{world.org}/team/readers/invite/refused@example.net"
    )
    assert response.status_code == 200
    assert _pending(world, "readers")[0]["email"] == "refused@example.net"
    failure = re.compile(r"WARNING .*could not send email \d+ to refused@example\.net")
    deadline = time.monotonic() + 30
    while not failure.search(mail_server.log_text()) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert failure.search(mail_server.log_text()), mail_server.log_text()[-2000:]
    assert smtp.handler.refused > refused_before
    assert smtp.messages_for("refused@example.net") == []


def test_slow_mail_server_does_not_hold_up_the_invite(
    mail_server: LiveServer, smtp: SmtpServer, world: OrgWorld
) -> None:
    smtp.set_mode("hold")
    try:
        response = world.client("owner").put(
            f"/api/v1/organization/{world.org}/team/readers/invite/held@example.net"
        )
        # The API answered while the mail server still holds the message.
        assert response.status_code == 200
        assert smtp.messages_for("held@example.net") == []
    finally:
        smtp.release()
    assert smtp.wait_for("held@example.net").message["To"] == "held@example.net"


def test_superusers_with_full_access_and_read_only(
    mail_server: LiveServer, superusers: dict[str, httpx.Client], world: OrgWorld
) -> None:
    admin, auditor = superusers["admin"], superusers["auditor"]
    org = world.org
    members = f"/api/v1/organization/{org}/team/readers/members"
    listed = admin.get(members)
    assert listed.status_code == 200 and listed.json()["can_edit"] is True
    read_only = auditor.get(members)
    assert read_only.status_code == 200 and read_only.json()["can_edit"] is False
    for client in (admin, auditor):
        assert client.get(f"/api/v1/organization/{org}/team/readers/permissions").status_code == 200
        assert client.get(f"/api/v1/organization/{org}/members").status_code == 200
        assert client.get(f"/api/v1/organization/{org}/prototypes").status_code == 200
    assert (
        auditor.put(f"/api/v1/organization/{org}/team/extra", json={"role": "member"}).status_code
        == 403
    )
    assert auditor.put(f"{members}/{world.outsider.username}").status_code == 403

    created = admin.put(f"/api/v1/organization/{org}/team/extra", json={"role": "admin"})
    assert created.status_code == 200 and created.json()["new_team"] is True
    # A superuser in no admin team may delete an admin team (no self-lockout to protect).
    assert admin.delete(f"/api/v1/organization/{org}/team/extra").status_code == 204
    direct = admin.put(f"{members}/{world.robot}")
    assert direct.status_code == 200 and direct.json()["invited"] is False
    missing_org = admin.put("/api/v1/organization/noorg/team/x", json={"role": "member"})
    assert missing_org.status_code == 400
    assert missing_org.json() == {"message": "Organization does not exist: noorg"}
    assert admin.get("/api/v1/organization/noorg/team/x/members").status_code == 404
    assert auditor.get("/api/v1/organization/noorg/members").status_code == 404


def test_invitee_sees_the_invite_as_a_notification(
    mail_server: LiveServer, smtp: SmtpServer, world: OrgWorld
) -> None:
    owner = world.client("owner")
    outsider = world.client("outsider")
    for team in ("readers", "owners"):
        owner.put(f"/api/v1/organization/{world.org}/team/{team}/members/{world.outsider.username}")
    listing = outsider.get("/api/v1/user/notifications", params={"limit": 1})
    assert listing.status_code == 200
    body = listing.json()
    assert body["additional"] is True
    (newest,) = body["notifications"]
    assert newest["kind"] == "org_team_invite"
    assert newest["organization"] is None
    assert newest["dismissed"] is False
    assert re.match(r"\w{3}, \d{2} \w{3} \d{4} \d{2}:\d{2}:\d{2} -0000$", newest["created"])
    code = newest["metadata"].pop("code")
    assert newest["metadata"] == {
        "inviter": world.owner.username,
        "org": world.org,
        "team": "owners",
    }
    deadline = time.monotonic() + 30
    while len(smtp.messages_for(world.outsider.email)) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    codes = {_invite_code(m.text, mail_server) for m in smtp.messages_for(world.outsider.email)}
    assert code in codes
    assert code.startswith("urn:teaminvite:")
    second_page = outsider.get("/api/v1/user/notifications", params={"limit": 1, "page": 2}).json()
    assert second_page["additional"] is False
    assert second_page["notifications"][0]["metadata"]["team"] == "readers"

    path = f"/api/v1/user/notifications/{newest['id']}"
    assert outsider.get(path).json()["id"] == newest["id"]
    assert world.client("reader").get(path).status_code == 404
    assert world.client("anonymous").get("/api/v1/user/notifications").status_code == 401
    dismissed = outsider.put(path, json={"dismissed": True})
    assert dismissed.status_code == 200 and dismissed.json()["dismissed"] is True
    assert outsider.put(path, json={"dismissed": "yes"}).status_code == 400
    remaining = outsider.get("/api/v1/user/notifications").json()["notifications"]
    assert [n["metadata"]["team"] for n in remaining] == ["readers"]

    # The code in the notification works; accepting clears the organization's invitations.
    assert outsider.put(f"/api/v1/teaminvite/{code}").json() == {"org": world.org, "team": "owners"}
    assert outsider.get("/api/v1/user/notifications").json()["notifications"] == []
    assert outsider.get(path).status_code == 404


def test_signing_up_with_an_email_invite_confirms_the_address(
    mail_server: LiveServer, smtp: SmtpServer, world: OrgWorld
) -> None:
    owner = world.client("owner")
    newcomer = unique("newbie")
    address = f"{newcomer}@example.net"
    assert (
        owner.put(f"/api/v1/organization/{world.org}/team/readers/invite/{address}").status_code
        == 200
    )
    code = _invite_code(smtp.wait_for(address).text, mail_server)
    with csrf_client(mail_server) as browser:
        plain = browser.post(
            "/api/v1/user/",
            json={
                "username": unique("plain"),
                "password": "password123",
                "email": f"{unique('p')}@example.net",
            },
        )
        assert plain.json() == {"awaiting_verification": True}
        created = browser.post(
            "/api/v1/user/",
            json={
                "username": newcomer,
                "password": "password123",
                "email": address,
                "invite_code": code,
            },
        )
        assert created.status_code == 200, created.text
        assert created.json()["username"] == newcomer
        assert created.json()["verified"] is True
        browser.headers["X-CSRF-Token"] = created.headers["X-Next-CSRF-Token"]
        # Signed in straight away, the newcomer accepts the invitation in the same session.
        assert browser.put(f"/api/v1/teaminvite/{code}").json() == {
            "org": world.org,
            "team": "readers",
        }
    assert newcomer in team_member_names(mail_server, world.org, "readers")


def test_signing_in_with_an_email_invite_confirms_the_address(
    mail_server: LiveServer, smtp: SmtpServer, world: OrgWorld
) -> None:
    username = unique("late")
    address = f"{username}@example.net"
    with csrf_client(mail_server) as browser:
        signup = browser.post(
            "/api/v1/user/",
            json={"username": username, "password": "password123", "email": address},
        )
        assert signup.json() == {"awaiting_verification": True}
        refused = signin(browser, username, "password123")
        assert refused.status_code == 403
        assert refused.json()["needsEmailVerification"] is True
        other = "elsewhere@example.net"
        world.client("owner").put(f"/api/v1/organization/{world.org}/team/readers/invite/{other}")
        other_code = _invite_code(smtp.wait_for(other).text, mail_server)
        wrong = browser.post(
            "/api/v1/signin",
            json={"username": username, "password": "password123", "invite_code": other_code},
        )
        assert wrong.status_code == 403
        world.client("owner").put(f"/api/v1/organization/{world.org}/team/readers/invite/{address}")
        code = _invite_code(smtp.wait_for(address, containing="/confirminvite").text, mail_server)
        accepted = browser.post(
            "/api/v1/signin",
            json={"username": username, "password": "password123", "invite_code": code},
        )
        assert accepted.status_code == 200
        assert accepted.json() == {"success": True}
