"""Registry size: queueing through the API and the worker that computes it."""

from __future__ import annotations

import time

from sqlalchemy import func, select

from cargohold.db.models.registry import Blob
from tests.superuser.conftest import Callers, assert_api_error
from tests.support.server import LiveServer


def test_registry_size_queueing_answers_201_then_202(
    admin_client, user_client, anon_client
) -> None:
    first = admin_client.post("/api/v1/superuser/registrysize/")
    assert first.status_code == 201
    assert first.json() == ""
    again = admin_client.post("/api/v1/superuser/registrysize")
    assert again.status_code == 202
    state = admin_client.get("/api/v1/superuser/registrysize/").json()
    assert state["queued"] is True or state["running"] is True
    assert set(state) == {"size_bytes", "last_ran", "queued", "running"}
    assert_api_error(user_client.get("/api/v1/superuser/registrysize/"), 403, "insufficient_scope")
    assert_api_error(user_client.post("/api/v1/superuser/registrysize/"), 403, "insufficient_scope")
    assert_api_error(anon_client.get("/api/v1/superuser/registrysize/"), 401, "invalid_token")
    assert anon_client.post("/api/v1/superuser/registrysize/").status_code in (401, 403)


def test_worker_computes_the_size_of_every_stored_blob(
    full_access_server: LiveServer, full_callers: Callers
) -> None:
    with full_access_server.db() as session:
        for size in (1000, 2345, 7):
            session.add(Blob(digest=f"sha256:{time.time_ns():064x}"[-71:], size=size))
    with full_access_server.db() as session:
        expected = session.scalar(select(func.sum(Blob.size)))
    assert expected >= 3352

    # A read-only superuser may look but not queue.
    assert_api_error(
        full_callers.auditor.post("/api/v1/superuser/registrysize/"), 403, "insufficient_scope"
    )
    assert full_callers.admin.post("/api/v1/superuser/registrysize/").status_code in (201, 202)
    deadline = time.monotonic() + 30
    state = {}
    while time.monotonic() < deadline:
        state = full_callers.auditor.get("/api/v1/superuser/registrysize/").json()
        if state["last_ran"] is not None and not state["queued"] and not state["running"]:
            break
        time.sleep(0.3)
    assert state["size_bytes"] == expected
    assert isinstance(state["last_ran"], int)
    assert abs(state["last_ran"] / 1000 - time.time()) < 120
    # Once idle, a new request is queued afresh.
    assert full_callers.admin.post("/api/v1/superuser/registrysize/").status_code == 201
