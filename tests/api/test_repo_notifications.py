"""Repository notifications end to end: the API, real deliveries and the webhook guard.

Webhooks are received on 127.0.0.2, which SSRF_ALLOWED_HOSTS opens; 127.0.0.1 (where the
canary listens) is refused whatever the allow list says, as Quay refuses it.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from cargohold.db.models.notifications import RepositoryNotification
from cargohold.db.models.queue import QueueItem
from tests.support.accounts import (
    ALL_SCOPES,
    TestUser,
    bearer_client,
    create_organization,
    create_user,
    issue_token,
    unique,
)
from tests.support.audit import log_entries
from tests.support.canary import canary_server
from tests.support.content import make_repository
from tests.support.registry import make_image, write_oci_layout
from tests.support.server import LiveServer
from tests.support.smtp import SmtpServer
from tests.support.webhook import WebhookListener, webhook_listener

LINK_RE = re.compile(r"http://\S+/authrepoemail\?code=(\S+)")


@pytest.fixture(scope="module")
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory, smtp: SmtpServer) -> Iterator[LiveServer]:
    server = LiveServer(
        tmp_path_factory.mktemp("notifications"),
        {
            "SSRF_ALLOWED_HOSTS": ["127.0.0.2"],
            "FEATURE_MAILING": True,
            "MAIL_SERVER": "127.0.0.1",
            "MAIL_PORT": smtp.port,
            "MAIL_USE_TLS": False,
            "MAIL_DEFAULT_SENDER": "registry@example.com",
            "NOTIFICATION_RETRY_DELAY_SEC": 1,
            "NOTIFICATION_SEND_TIMEOUT": 3,
            "NOTIFICATION_EXPIRY_SCAN_SEC": 1,
        },
    ).start()
    yield server
    server.destroy()


@pytest.fixture(scope="module")
def owner(live: LiveServer) -> TestUser:
    return create_user(live, unique("owner"))


@pytest.fixture(scope="module")
def client(live: LiveServer, owner: TestUser) -> Iterator[httpx.Client]:
    with bearer_client(live, issue_token(live, owner.username, ALL_SCOPES)) as made:
        yield made


@pytest.fixture
def repo(live: LiveServer, owner: TestUser) -> str:
    return make_repository(live, owner.username)


@pytest.fixture
def listener() -> Iterator[WebhookListener]:
    with webhook_listener() as made:
        yield made


def _create(client: httpx.Client, repo: str, **body) -> httpx.Response:
    payload = {"event": "repo_push", "method": "webhook", "config": {}, "eventConfig": {}}
    payload.update(body)
    return client.post(f"/api/v1/repository/{repo}/notification/", json=payload)


def _webhook(client: httpx.Client, repo: str, url: str, **body) -> dict:
    response = _create(client, repo, config={"url": url}, **body)
    assert response.status_code == 201, response.text
    return response.json()


def _failures(client: httpx.Client, repo: str, uuid: str) -> int:
    response = client.get(f"/api/v1/repository/{repo}/notification/{uuid}")
    assert response.status_code == 200, response.text
    return response.json()["number_of_failures"]


def _wait_failures(client: httpx.Client, repo: str, uuid: str, expected: int) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if _failures(client, repo, uuid) == expected:
            return
        time.sleep(0.2)
    raise AssertionError(f"failures stayed at {_failures(client, repo, uuid)}, not {expected}")


def _notification_queue(live: LiveServer) -> list[dict]:
    with live.db() as session:
        rows = session.scalars(
            select(QueueItem.body).where(QueueItem.queue_name == "notification")
        ).all()
    return [json.loads(row) for row in rows]


# --- the API ---------------------------------------------------------------------------------


def test_create_list_get_delete_and_audit(live, client, owner, repo, listener) -> None:
    created = _webhook(client, repo, listener.url + "/hook")
    assert created["title"] is None
    assert created["event"] == "repo_push"
    assert created["method"] == "webhook"
    assert created["config"] == {"url": listener.url + "/hook"}
    assert created["event_config"] == {}
    assert created["number_of_failures"] == 0
    uuid = created["uuid"]

    titled = _webhook(client, repo, listener.url + "/t", title="Deploys")
    assert titled["title"] == "Deploys"

    listed = client.get(f"/api/v1/repository/{repo}/notification/").json()["notifications"]
    assert [n["uuid"] for n in listed] == [uuid, titled["uuid"]]
    assert client.get(f"/api/v1/repository/{repo}/notification/{uuid}").json() == created

    deleted = client.delete(f"/api/v1/repository/{repo}/notification/{uuid}")
    assert deleted.status_code == 204
    assert deleted.content == b""
    assert client.get(f"/api/v1/repository/{repo}/notification/{uuid}").status_code == 404
    again = client.delete(f"/api/v1/repository/{repo}/notification/{uuid}")
    assert again.status_code == 400
    namespace, name = repo.split("/")
    assert again.json()["detail"] == (
        f"No repository notification found for: {namespace}, {name}, {uuid}"
    )

    kinds = {
        kind: log_entries(live, owner.username, kind)
        for kind in ("add_repo_notification", "delete_repo_notification")
    }
    assert {
        "repo": name,
        "namespace": namespace,
        "notification_id": uuid,
        "event": "repo_push",
        "method": "webhook",
    } in kinds["add_repo_notification"]
    assert kinds["delete_repo_notification"][-1]["notification_id"] == uuid


def test_test_and_reset_endpoints(live, client, owner, repo, listener) -> None:
    created = _webhook(client, repo, listener.url + "/sample")
    uuid = created["uuid"]
    tested = client.post(f"/api/v1/repository/{repo}/notification/{uuid}/test")
    assert tested.status_code == 200
    assert tested.json() == {}
    body = listener.wait_for(1, path="/sample")[0].body
    namespace, name = repo.split("/")
    assert body["updated_tags"] == ["latest", "foo"]
    assert body["repository"] == repo
    assert body["namespace"] == namespace
    assert body["name"] == name
    assert body["docker_url"] == f"{live.host}/{repo}"
    assert body["homepage"] == f"{live.url}/repository/{repo}"

    reset = client.post(f"/api/v1/repository/{repo}/notification/{uuid}")
    assert reset.status_code == 204
    assert (
        log_entries(live, owner.username, "reset_repo_notification")[-1]["notification_id"] == uuid
    )
    missing = "00000000-0000-0000-0000-000000000000"
    for path in (missing, f"{missing}/test"):
        response = client.post(f"/api/v1/repository/{repo}/notification/{path}")
        assert response.status_code == 400
        assert "No repository notification found for" in response.json()["detail"]


def test_permissions_and_other_repositories(live, client, owner, repo, listener) -> None:
    uuid = _webhook(client, repo, listener.url)["uuid"]
    other_repo = make_repository(live, owner.username)
    # A uuid is only found through its own repository.
    assert client.get(f"/api/v1/repository/{other_repo}/notification/{uuid}").status_code == 404
    assert client.delete(f"/api/v1/repository/{other_repo}/notification/{uuid}").status_code == 400
    assert client.get(f"/api/v1/repository/{repo}/notification/{uuid}").status_code == 200

    stranger = create_user(live, unique("stranger"))
    with bearer_client(live, issue_token(live, stranger.username, ALL_SCOPES)) as outsider:
        for method, path in (
            ("GET", ""),
            ("POST", ""),
            ("GET", uuid),
            ("DELETE", uuid),
            ("POST", uuid),
            ("POST", f"{uuid}/test"),
        ):
            response = outsider.request(
                method,
                f"/api/v1/repository/{repo}/notification/{path}",
                json={"event": "repo_push", "method": "webhook", "config": {}, "eventConfig": {}},
            )
            assert response.status_code == 403, (method, path)
    with httpx.Client(base_url=live.url) as anonymous:
        assert anonymous.get(f"/api/v1/repository/{repo}/notification/").status_code == 401
    assert client.get(f"/api/v1/repository/{repo}/notification/{uuid}").json()["uuid"] == uuid


BAD_REQUESTS = [
    ({"event": "no_such_event"}, "Unknown event: no_such_event"),
    ({"method": "carrier_pigeon"}, "Unknown notification method: carrier_pigeon"),
    ({"config": {}}, "Missing webhook URL"),
    ({"config": {"url": "ftp://127.0.0.2/x"}}, "Invalid webhook URL"),
    ({"config": {"url": "http://127.0.0.2/", "template": "{not json"}}, "Could not parse template"),
    ({"config": {"url": "http://127.0.0.2/", "template": '{"a": "${}"}'}}, "Empty expression"),
    ({"method": "slack", "config": {}}, "Missing Slack Callback URL"),
    ({"method": "email", "config": {}}, "Missing e-mail address"),
    (
        {"method": "email", "config": {"email": "nobody@example.com"}},
        "The specified e-mail address is not authorized to receive notifications for this "
        "repository",
    ),
    ({"method": "quay_notification", "config": {}}, "Missing target"),
    (
        {"method": "quay_notification", "config": {"target": {"kind": "planet", "name": "x"}}},
        "Missing target",
    ),
    (
        {"method": "quay_notification", "config": {"target": {"kind": "user", "name": "nobody0"}}},
        "Unknown user nobody0",
    ),
    (
        {"method": "quay_notification", "config": {"target": {"kind": "org", "name": "other"}}},
        "Organization name must match repository namespace",
    ),
    (
        {"method": "quay_notification", "config": {"target": {"kind": "team", "name": "owners"}}},
        "Unknown team owners",
    ),
    ({"event": "repo_image_expiry", "config": {"url": "http://127.0.0.2/"}}, "number of days"),
    (
        {
            "event": "repo_image_expiry",
            "eventConfig": {"days": "5"},
            "config": {"url": "http://127.0.0.2/"},
        },
        "number of days",
    ),
    ({"config": "http://127.0.0.2/"}, "is not of type 'object'"),
    ({"eventConfig": None}, "is not of type 'object'"),
    ({"event": 5}, "is not of type 'string'"),
    ({"title": "t" * 300, "config": {"url": "http://127.0.0.2/"}}, "is too long"),
]


@pytest.mark.parametrize(("change", "detail"), BAD_REQUESTS)
def test_bad_input_is_refused_with_quays_error(client, repo, change, detail) -> None:
    response = _create(client, repo, **change)
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["error_type"] == "invalid_request"
    assert detail in body["detail"]
    assert client.get(f"/api/v1/repository/{repo}/notification/").json() == {"notifications": []}


def test_missing_keys_and_broken_json(client, repo) -> None:
    for key in ("event", "method", "config", "eventConfig"):
        body = {"event": "repo_push", "method": "webhook", "config": {}, "eventConfig": {}}
        del body[key]
        response = client.post(f"/api/v1/repository/{repo}/notification/", json=body)
        assert response.status_code == 400
        assert response.json()["detail"] == f"'{key}' is a required property"
    broken = client.post(
        f"/api/v1/repository/{repo}/notification/",
        content=b"{nope",
        headers={"Content-Type": "application/json"},
    )
    assert broken.status_code == 400
    assert "message" in broken.json()


# --- the webhook guard -----------------------------------------------------------------------

BLOCKED_HOSTS = [
    "127.0.0.1",
    "localhost",
    "LOCALHOST.",
    "127.1",
    "2130706433",
    "0x7f000001",
    "[::1]",
    "[::ffff:127.0.0.1]",
    "169.254.169.254",
    "2852039166",
    "0xa9.0xfe.0xa9.0xfe",
    "metadata.google.internal",
    "10.0.0.1",
    "192.168.1.1",
]


def test_blocked_targets_are_refused_and_reach_nothing(client, repo) -> None:
    with canary_server() as canary:
        for host in BLOCKED_HOSTS:
            url = f"http://{host}:{canary.port}/hook"
            for method in ("webhook", "slack"):
                response = _create(client, repo, method=method, config={"url": url})
                assert response.status_code == 400, (host, method, response.text)
                assert response.json()["detail"].startswith("Invalid"), response.text
        assert client.get(f"/api/v1/repository/{repo}/notification/").json() == {
            "notifications": []
        }
        time.sleep(1)
        assert canary.requests == []


def test_blacklist_holds_even_when_the_allow_list_opens_loopback(server_factory, tmp_path) -> None:
    own_name = "registry.cargohold.test"
    live = server_factory(
        {"SSRF_ALLOWED_HOSTS": ["127.0.0.0/8", "localhost", own_name]},
    )
    user = create_user(live, unique("wide"))
    path = make_repository(live, user.username)
    with (
        canary_server() as canary,
        bearer_client(live, issue_token(live, user.username, ALL_SCOPES)) as wide,
    ):
        for host in ("127.0.0.1", "localhost", "127.1", "2130706433", live.host.split(":")[0]):
            response = _create(wide, path, config={"url": f"http://{host}:{canary.port}/"})
            assert response.status_code == 400, (host, response.text)
            assert response.json()["detail"] == "Invalid webhook URL"
        assert canary.requests == []
    own = server_factory({"SERVER_HOSTNAME": f"{own_name}:443", "SSRF_ALLOWED_HOSTS": [own_name]})
    own_user = create_user(own, unique("own"))
    own_path = make_repository(own, own_user.username)
    with bearer_client(own, issue_token(own, own_user.username, ALL_SCOPES)) as own_client:
        response = _create(own_client, own_path, config={"url": f"https://{own_name}/hook"})
        assert response.status_code == 400
        assert response.json()["detail"] == "Invalid webhook URL"


def test_redirect_to_a_blocked_address_is_not_followed(client, repo, listener) -> None:
    with canary_server() as canary:
        listener.redirect_to = canary.url + "/stolen"
        uuid = _webhook(client, repo, listener.url + "/redirects")["uuid"]
        client.post(f"/api/v1/repository/{repo}/notification/{uuid}/test")
        listener.wait_for(1, path="/redirects")
        _wait_failures(client, repo, uuid, 1)
        assert canary.requests == []


# --- delivery, failures and retries ----------------------------------------------------------


def test_failing_target_is_retried_then_disabled_and_reset(client, repo, listener) -> None:
    listener.status = 500
    uuid = _webhook(client, repo, listener.url + "/down")["uuid"]
    assert client.post(f"/api/v1/repository/{repo}/notification/{uuid}/test").status_code == 200
    listener.wait_for(3, path="/down")
    _wait_failures(client, repo, uuid, 3)
    # Disabled: a new event is not even attempted.
    client.post(f"/api/v1/repository/{repo}/notification/{uuid}/test")
    time.sleep(3)
    assert len([r for r in listener.received if r.path == "/down"]) == 3

    listener.status = 200
    assert client.post(f"/api/v1/repository/{repo}/notification/{uuid}").status_code == 204
    assert _failures(client, repo, uuid) == 0
    client.post(f"/api/v1/repository/{repo}/notification/{uuid}/test")
    listener.wait_for(4, path="/down")
    _wait_failures(client, repo, uuid, 0)


def test_unreachable_target_is_accepted_and_counted(live, client, repo) -> None:
    with webhook_listener() as gone:
        url = gone.url + "/gone"
    uuid = _webhook(client, repo, url)["uuid"]
    assert client.post(f"/api/v1/repository/{repo}/notification/{uuid}/test").status_code == 200
    # Tried three times, one failure each, then disabled.
    _wait_failures(client, repo, uuid, 3)


def test_targets_are_checked_again_at_delivery(live, client, repo, listener) -> None:
    """A target that became blocked after creation (here: changed in the database) is refused."""
    with canary_server() as canary:
        for url in (f"{canary.url}/direct", f"http://localhost:{canary.port}/named"):
            uuid = _webhook(client, repo, listener.url + "/before")["uuid"]
            with live.db() as session:
                stored = session.scalar(
                    select(RepositoryNotification).where(RepositoryNotification.uuid == uuid)
                )
                stored.config_json = json.dumps({"url": url})
            client.post(f"/api/v1/repository/{repo}/notification/{uuid}/test")
            _wait_failures(client, repo, uuid, 1)
        assert canary.requests == []
    assert listener.received == []


def test_template_shapes_the_body(client, repo, listener) -> None:
    template = json.dumps(
        {"text": "pushed ${updated_tags} to ${repository}", "tags": "${updated_tags}", "n": 1}
    )
    created = _create(client, repo, config={"url": listener.url + "/tpl", "template": template})
    assert created.status_code == 201, created.text
    uuid = created.json()["uuid"]
    client.post(f"/api/v1/repository/{repo}/notification/{uuid}/test")
    received = listener.wait_for(1, path="/tpl")[0]
    assert received.body == {
        "text": f"pushed latest,foo to {repo}",
        "tags": ["latest", "foo"],
        "n": 1,
    }
    assert received.headers["Content-type"] == "application/json"


def test_slack_message(client, repo, listener) -> None:
    response = _create(client, repo, method="slack", config={"url": listener.url + "/slack"})
    assert response.status_code == 201, response.text
    client.post(f"/api/v1/repository/{repo}/notification/{response.json()['uuid']}/test")
    body = listener.wait_for(1, path="/slack")[0].body
    assert body["text"] == f"Repository {repo} updated"
    assert body["username"] == "quayiobot"
    attachment = body["attachments"][0]
    assert attachment["fallback"] == body["text"]
    assert "latest, foo" in attachment["text"]
    assert attachment["mrkdwn_in"] == ["text"]


def _skopeo_push(live: LiveServer, user: TestUser, layout: Path, reference: str) -> None:
    result = subprocess.run(
        [
            "skopeo",
            "copy",
            "--dest-tls-verify=false",
            f"--dest-creds={user.username}:{user.password}",
            f"oci:{layout}:latest",
            f"docker://{live.host}/{reference}",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_skopeo_push_fires_repo_push(live, client, owner, repo, listener, tmp_path) -> None:
    uuid = _webhook(client, repo, listener.url + "/push")["uuid"]
    layout = write_oci_layout(tmp_path / "layout", {"latest": make_image()})
    _skopeo_push(live, owner, layout, f"{repo}:v1.2")
    body = listener.wait_for(1, path="/push")[0].body
    namespace, name = repo.split("/")
    assert body == {
        "repository": repo,
        "namespace": namespace,
        "name": name,
        "docker_url": f"{live.host}/{repo}",
        "homepage": f"{live.url}/repository/{repo}",
        "updated_tags": ["v1.2"],
    }
    # The delivered item leaves the queue; nothing is delivered twice.
    deadline = time.monotonic() + 10
    while [item for item in _notification_queue(live) if item["notification_uuid"] == uuid]:
        assert time.monotonic() < deadline, "the delivered item stayed queued"
        time.sleep(0.1)
    time.sleep(1)
    assert len([r for r in listener.received if r.path == "/push"]) == 1
    assert _failures(client, repo, uuid) == 0


# --- e-mail and in-app notifications ---------------------------------------------------------


def test_email_needs_a_confirmed_address_then_arrives(live, client, repo, smtp) -> None:
    address = f"{unique('watcher')}@example.com"
    path = f"/api/v1/repository/{repo}/authorizedemail/{address}"
    assert client.get(path).status_code == 404
    requested = client.post(path)
    assert requested.status_code == 200
    namespace, name = repo.split("/")
    assert requested.json() == {
        "email": address,
        "repository": name,
        "namespace": namespace,
        "confirmed": False,
    }
    refused = _create(client, repo, method="email", config={"email": address})
    assert refused.status_code == 400

    link = LINK_RE.search(smtp.wait_for(address).text)
    assert link, smtp.wait_for(address).text
    with httpx.Client(base_url=live.url) as anonymous:
        assert anonymous.get("/authrepoemail", params={"code": "wrong"}).status_code == 400
        assert anonymous.get("/authrepoemail", params={"code": link.group(1)}).status_code == 200
        # A code works once.
        assert anonymous.get("/authrepoemail", params={"code": link.group(1)}).status_code == 400
    assert client.get(path).json()["confirmed"] is True

    created = _create(client, repo, method="email", config={"email": address})
    assert created.status_code == 201, created.text
    client.post(f"/api/v1/repository/{repo}/notification/{created.json()['uuid']}/test")
    mail = smtp.wait_for(address, containing="updated")
    assert mail.message["Subject"] == f"Repository {repo} updated"
    assert "latest, foo" in mail.text
    assert f"{live.url}/repository/{repo}" in mail.text


def _user_notifications(live: LiveServer, user: TestUser) -> list[dict]:
    with bearer_client(live, issue_token(live, user.username, ALL_SCOPES)) as reader:
        response = reader.get("/api/v1/user/notifications", params={"limit": 50})
    assert response.status_code == 200
    return response.json()["notifications"]


def _wait_user_notification(live: LiveServer, user: TestUser, kind: str) -> dict:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        found = [n for n in _user_notifications(live, user) if n["kind"] == kind]
        if found:
            return found[0]
        time.sleep(0.2)
    raise AssertionError(f"no {kind} notification for {user.username}")


def test_quay_notification_reaches_user_team_and_org(live, owner) -> None:
    org = create_organization(live, owner)
    repo = make_repository(live, org)
    member = create_user(live, unique("member"))
    watcher = create_user(live, unique("watcher"))
    with bearer_client(live, issue_token(live, owner.username, ALL_SCOPES)) as admin:
        assert (
            admin.put(
                f"/api/v1/organization/{org}/team/builders", json={"role": "member"}
            ).status_code
            == 200
        )
        with live.db() as session:
            from cargohold.db.models.accounts import Team, TeamMember

            team = session.scalar(select(Team).where(Team.name == "builders"))
            session.add(TeamMember(team_id=team.id, user_id=member.id))
        targets = [
            ("user", watcher.username, "repo_push"),
            ("team", "builders", "build_success"),
            ("org", org, "repo_mirror_sync_failed"),
        ]
        for kind, name, event in targets:
            created = _create(
                admin,
                repo,
                event=event,
                method="quay_notification",
                config={"target": {"kind": kind, "name": name}},
            )
            assert created.status_code == 201, created.text
            admin.post(f"/api/v1/repository/{repo}/notification/{created.json()['uuid']}/test")

    pushed = _wait_user_notification(live, watcher, "repo_push")
    assert pushed["metadata"]["repository"] == repo
    assert pushed["metadata"]["updated_tags"] == ["latest", "foo"]
    assert pushed["organization"] is None
    built = _wait_user_notification(live, member, "build_success")
    assert built["metadata"]["build_id"] == "fake-build-id"
    org_wide = _wait_user_notification(live, owner, "repo_mirror_sync_failed")
    assert org_wide["organization"] == org
    assert org_wide["metadata"]["message"]
    assert [n for n in _user_notifications(live, member) if n["kind"] == "repo_push"] == []
    assert [n for n in _user_notifications(live, watcher) if n["kind"] != "repo_push"] == []


# --- tags about to expire --------------------------------------------------------------------


def test_image_expiry_fires_once_per_tag(live, client, owner, repo, listener, tmp_path) -> None:
    layout = write_oci_layout(tmp_path / "layout", {"latest": make_image()})
    for tag in ("soon", "later", "never"):
        _skopeo_push(live, owner, layout, f"{repo}:{tag}")
    now = int(time.time())
    for tag, seconds in (("soon", 2 * 86400), ("later", 30 * 86400)):
        response = client.put(
            f"/api/v1/repository/{repo}/tag/{tag}", json={"expiration": now + seconds}
        )
        assert response.status_code == 201, response.text
    created = _create(
        client,
        repo,
        event="repo_image_expiry",
        config={"url": listener.url + "/expiry"},
        eventConfig={"days": 7},
    )
    assert created.status_code == 201, created.text
    body = listener.wait_for(1, path="/expiry")[0].body
    assert body["tags"] == ["soon"]
    assert body["expiring_in"] == "7 days"
    assert body["repository"] == repo
    time.sleep(3)
    assert len([r for r in listener.received if r.path == "/expiry"]) == 1


def test_build_ref_filter_on_the_sample_build(client, repo, listener) -> None:
    # The sample build's ref is refs/heads/somebranch.
    filters = {"match": "refs/heads/some.*", "other": "refs/heads/main", "broken": "("}
    for name, regex in filters.items():
        created = _create(
            client,
            repo,
            event="build_success",
            config={"url": f"{listener.url}/{name}"},
            eventConfig={"ref-regex": regex},
        )
        assert created.status_code == 201, created.text
        client.post(f"/api/v1/repository/{repo}/notification/{created.json()['uuid']}/test")
    body = listener.wait_for(1, path="/match")[0].body
    assert body["build_id"] == "fake-build-id"
    assert body["homepage"].endswith(f"/repository/{repo}/build/fake-build-id")
    time.sleep(3)
    assert {r.path for r in listener.received} == {"/match"}


def test_email_authorization_rules(live, client, repo, server, admin) -> None:
    stranger = create_user(live, unique("stranger"))
    path = f"/api/v1/repository/{repo}/authorizedemail/someone@example.com"
    with bearer_client(live, issue_token(live, stranger.username, ALL_SCOPES)) as outsider:
        assert outsider.post(path).status_code == 403
        assert outsider.get(path).status_code == 403
    invalid = client.post(f"/api/v1/repository/{repo}/authorizedemail/not-an-address")
    assert invalid.status_code == 400
    assert invalid.json()["detail"] == "Invalid e-mail address"
    # Without FEATURE_MAILING the routes do not exist, as in Quay.
    plain_repo = make_repository(server, admin.username)
    with bearer_client(server, issue_token(server, admin.username, ALL_SCOPES)) as plain:
        assert (
            plain.post(f"/api/v1/repository/{plain_repo}/authorizedemail/a@b.example").status_code
            == 404
        )
