"""Audit log exports: queued through the API, written by the worker, announced by e-mail or
a callback POST (through the outbound guard), and downloaded from the link they carry."""

from __future__ import annotations

import datetime as dt
import json
import re
import time
from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import select

from cargohold.db.models.audit import LogEntry, LogExport
from cargohold.domain import log_export
from cargohold.domain.repositories import find_repository
from tests.support.accounts import (
    ALL_SCOPES,
    TestUser,
    bearer_client,
    create_organization,
    create_user,
    issue_token,
)
from tests.support.audit import log_entries
from tests.support.content import make_repository
from tests.support.repos import grant
from tests.support.server import LiveServer
from tests.support.sessions import csrf_client
from tests.support.smtp import SmtpServer
from tests.support.webhook import LISTENER_HOST, webhook_listener

LINK_RE = re.compile(r"(http://\S+/exportedlogs/\S+)")


def _since_yesterday() -> str:
    """A window from yesterday to today, taken when the request is made: entries spread over
    the last minutes stay inside it even when the test runs just after midnight."""
    today = dt.datetime.now(dt.UTC)
    yesterday = today - dt.timedelta(days=1)
    return f"starttime={yesterday:%m/%d/%Y}&endtime={today:%m/%d/%Y}"


@pytest.fixture(scope="module")
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def export_server(
    tmp_path_factory: pytest.TempPathFactory, smtp: SmtpServer
) -> Iterator[LiveServer]:
    live = LiveServer(
        tmp_path_factory.mktemp("exportserver"),
        {
            "FEATURE_MAILING": True,
            "MAIL_SERVER": "127.0.0.1",
            "MAIL_PORT": smtp.port,
            "MAIL_USE_TLS": False,
            "MAIL_DEFAULT_SENDER": "registry@example.com",
            "SSRF_ALLOWED_HOSTS": [LISTENER_HOST],
        },
    ).start()
    yield live
    live.destroy()


@pytest.fixture
def owner(export_server: LiveServer) -> TestUser:
    return create_user(export_server)


@pytest.fixture
def owner_client(export_server: LiveServer, owner: TestUser) -> Iterator[httpx.Client]:
    token = issue_token(export_server, owner.username, ALL_SCOPES)
    with bearer_client(export_server, token) as client:
        yield client


def _add_entries(server: LiveServer, path: str, kind: str, count: int) -> None:
    """`count` entries about the repository at `path`, one second apart, ending now."""
    namespace, name = path.split("/")
    with server.db() as session:
        repo = find_repository(session, namespace, name)
        now = dt.datetime.now(dt.UTC)
        session.add_all(
            LogEntry(
                kind=kind,
                account_id=repo.namespace_user_id,
                repository_id=repo.id,
                metadata_json=json.dumps({"repo": name, "n": n}),
                datetime=now - dt.timedelta(seconds=count - n),
            )
            for n in range(count)
        )


def _export_count(server: LiveServer) -> int:
    with server.db() as session:
        return len(session.scalars(select(LogExport.id)).all())


def _download(server: LiveServer, url: str) -> dict:
    assert url.startswith(server.url + "/exportedlogs/"), url
    with httpx.Client(timeout=30) as anonymous:
        response = anonymous.get(url)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    return response.json()


def test_export_by_email_sends_a_link_to_the_repository_entries(
    export_server: LiveServer, owner: TestUser, owner_client: httpx.Client, smtp: SmtpServer
) -> None:
    path = make_repository(export_server, owner.username)
    other = make_repository(export_server, owner.username)
    # More entries than one batch, so the file is written in several.
    _add_entries(export_server, path, "push_repo", 1100)
    _add_entries(export_server, other, "pull_repo", 3)
    answer = owner_client.post(
        f"/api/v1/repository/{path}/exportlogs?{_since_yesterday()}",
        json={"callback_email": owner.email},
    )
    assert answer.status_code == 200, answer.text
    export_id = answer.json()["export_id"]
    message = smtp.wait_for(owner.email, containing=export_id).message
    match = LINK_RE.search(message.get_content())
    assert match, message.get_content()
    document = _download(export_server, match.group(1))
    assert document["export_id"] == export_id
    assert document["details"]["namespace"] == owner.username
    assert document["details"]["repository"] == path.split("/")[1]
    # The export's own request is an entry of the repository too, and the newest.
    assert document["logs"][0]["kind"] == "export_logs_success"
    logs = document["logs"][1:]
    assert len(logs) == 1100 and {entry["kind"] for entry in logs} == {"push_repo"}
    # Newest first, each entry once.
    assert [entry["metadata"]["n"] for entry in logs] == list(range(1099, -1, -1))
    success = log_entries(export_server, owner.username, "export_logs_success")
    assert success[-1]["export_id"] == export_id and success[-1]["email"] == owner.email


def test_export_to_a_callback_posts_the_link_through_the_guard(
    export_server: LiveServer, owner: TestUser, owner_client: httpx.Client
) -> None:
    org = create_organization(export_server, owner)
    path = make_repository(export_server, org)
    _add_entries(export_server, path, "change_repo_visibility", 2)
    with webhook_listener() as listener:
        answer = owner_client.post(
            f"/api/v1/organization/{org}/exportlogs",
            json={"callback_url": f"{listener.url}/exported"},
        )
        assert answer.status_code == 200, answer.text
        received = listener.wait_for(1, path="/exported")[0].body
    export_id = answer.json()["export_id"]
    assert received["export_id"] == export_id and received["status"] == "success"
    assert received["namespace"] == org and received["repository"] is None
    document = _download(export_server, received["exported_data_url"])
    kinds = [entry["kind"] for entry in document["logs"]]
    assert kinds == ["export_logs_success", "change_repo_visibility", "change_repo_visibility"]
    # The user's own export holds the user's namespace entries only.
    with webhook_listener() as listener:
        mine = owner_client.post("/api/v1/user/exportlogs", json={"callback_url": listener.url})
        assert mine.status_code == 200, mine.text
        body = listener.wait_for(1)[0].body
    assert body["namespace"] == owner.username
    assert all(
        entry["metadata"].get("repo") != path.split("/")[1]
        for entry in _download(export_server, body["exported_data_url"])["logs"]
    )


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"callback_url": "http://169.254.169.254/latest/meta-data"}, "Invalid callback URL"),
        ({"callback_url": "http://10.1.2.3/hook"}, "Invalid callback URL"),
        ({"callback_url": "http://127.0.0.1:1/hook"}, "Invalid callback URL"),
        ({"callback_url": "ftp://example.com/hook"}, "Invalid callback URL"),
        ({"callback_email": "not-an-address"}, "Invalid callback e-mail"),
    ],
)
def test_bad_targets_are_refused_when_asked(
    export_server: LiveServer,
    owner: TestUser,
    owner_client: httpx.Client,
    body: dict,
    message: str,
) -> None:
    path = make_repository(export_server, owner.username)
    before = _export_count(export_server)
    answer = owner_client.post(f"/api/v1/repository/{path}/exportlogs", json=body)
    assert answer.status_code == 400 and answer.json() == {"message": message}
    failure = log_entries(export_server, owner.username, "export_logs_failure")
    assert failure[-1]["error"] == message
    assert _export_count(export_server) == before


def test_a_window_ending_before_it_starts_is_refused(
    export_server: LiveServer, owner_client: httpx.Client
) -> None:
    answer = owner_client.post(
        "/api/v1/user/exportlogs?starttime=12/31/2026&endtime=01/01/2026",
        json={"callback_email": "someone@example.com"},
    )
    assert answer.status_code == 400
    wrong_type = owner_client.post("/api/v1/user/exportlogs", json={"callback_url": 5})
    assert wrong_type.status_code == 400 and wrong_type.json()["error_type"] == "invalid_request"


def test_only_administrators_may_export(
    export_server: LiveServer, owner: TestUser, owner_client: httpx.Client
) -> None:
    org = create_organization(export_server, owner)
    path = make_repository(export_server, org)
    member = create_user(export_server)
    grant(export_server, path, member.username, "write")
    body = {"callback_email": "someone@example.com"}
    with bearer_client(
        export_server, issue_token(export_server, member.username, ALL_SCOPES)
    ) as client:
        assert client.post(f"/api/v1/repository/{path}/exportlogs", json=body).status_code == 403
        assert client.post(f"/api/v1/organization/{org}/exportlogs", json=body).status_code == 403
    with csrf_client(export_server) as anonymous:
        assert anonymous.post(f"/api/v1/repository/{path}/exportlogs", json=body).status_code == 401
        assert anonymous.post("/api/v1/user/exportlogs", json=body).status_code == 401
        assert (
            anonymous.post(f"/api/v1/organization/{org}/exportlogs", json=body).status_code == 401
        )


def test_links_are_unguessable_and_expire(
    export_server: LiveServer, owner: TestUser, owner_client: httpx.Client
) -> None:
    with webhook_listener() as listener:
        answer = owner_client.post("/api/v1/user/exportlogs", json={"callback_url": listener.url})
        assert answer.status_code == 200
        url = listener.wait_for(1)[0].body["exported_data_url"]
    export_id = answer.json()["export_id"]
    assert _download(export_server, url)["export_id"] == export_id
    with httpx.Client(timeout=30) as anonymous:
        assert anonymous.get(url[:-1] + ("A" if url[-1] != "A" else "B")).status_code == 404
        assert anonymous.get(f"{export_server.url}/exportedlogs/{export_id}").status_code == 404
        with export_server.db() as session:
            record = session.scalar(select(LogExport).where(LogExport.export_id == export_id))
            digest = record.digest
            record.expires = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
        assert anonymous.get(url).status_code == 404
    # The worker drops the expired file and its record.
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with export_server.db() as session:
            if session.scalar(select(LogExport).where(LogExport.export_id == export_id)) is None:
                break
        time.sleep(0.2)
    else:
        raise AssertionError("expired export still recorded")
    assert export_server.store().blob_size(digest) is None


def test_delivery_checks_the_callback_again(export_server: LiveServer) -> None:
    """A target the guard refuses by the time of delivery gets nothing; allowed, it gets the
    result."""
    job = log_export.ExportJob(
        export_id="00000000-0000-4000-8000-000000000000",
        namespace_id=1,
        namespace_name="someone",
        repository_id=None,
        repository_name=None,
        start=dt.datetime(2026, 1, 1, tzinfo=dt.UTC).isoformat(),
        end=dt.datetime(2026, 1, 2, tzinfo=dt.UTC).isoformat(),
        callback_url=None,
        callback_email=None,
    )
    allowing = export_server.settings
    refusing = allowing.model_copy(update={"SSRF_ALLOWED_HOSTS": []})
    with webhook_listener() as listener:
        job.callback_url = listener.url
        with pytest.raises(log_export.DeliveryFailed, match="refused"):
            log_export.post_callback(refusing, job, "success", "http://example.com/x")
        assert listener.received == []
        log_export.post_callback(allowing, job, "success", "http://example.com/x")
        body = listener.wait_for(1)[0].body
    assert body["start_time"] == "01/01/2026" and body["end_time"] == "01/01/2026"
    assert body["exported_data_url"] == "http://example.com/x"
