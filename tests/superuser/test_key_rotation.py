"""Rotating the registry's own signing key keeps logins and pulls working."""

from __future__ import annotations

import datetime as dt
import subprocess
import threading
import time

import jwt
import pytest
from sqlalchemy import delete, func, select, update

from cargohold.db.base import make_engine, make_session_factory, utcnow
from cargohold.db.models.keys import ServiceKey
from cargohold.domain.service_keys import SIGNING_MARGIN_S, KeyRing
from cargohold.storage import make_store
from cargohold.workers.runner import WorkerContext
from cargohold.workers.service_keys import rotate_instance_key
from tests.support.accounts import create_user, unique
from tests.support.registry import make_image, pull_push, push_image, token_for, v2_client

pytestmark = pytest.mark.slow


def _kid(token: str) -> str:
    return jwt.get_unverified_header(token)["kid"]


def _age_key(live, kid: str) -> None:
    """Move a key close to the end of its signing life, as an hour of running would."""
    with live.db() as session:
        session.execute(
            update(ServiceKey)
            .where(ServiceKey.kid == kid)
            .values(expiration_date=utcnow() + dt.timedelta(seconds=SIGNING_MARGIN_S + 600))
        )


def _served(live) -> set[str]:
    with v2_client(live) as client:
        return {key["kid"] for key in client.get("/keys/services/quay/keys").json()["keys"]}


def _rotate(live) -> None:
    """One pass of the rotation worker against the server's database."""
    settings = live.settings
    engine = make_engine(settings.DB_URI)
    try:
        context = WorkerContext(settings, make_session_factory(engine), make_store(settings))
        rotate_instance_key(context)
    finally:
        engine.dispose()


def test_rotation_keeps_login_and_pulls_working(server_factory) -> None:
    live = server_factory()
    owner = create_user(live)
    repo = f"{owner.username}/{unique('rot')}"
    auth = (owner.username, owner.password)
    image = make_image()
    old_token = token_for(live, auth, pull_push(repo))
    with v2_client(live, old_token) as client:
        assert push_image(client, repo, image, "v1").status_code == 201
    old_kid = _kid(old_token)
    # The server's own rotation worker starts once the HTTP processes serve: let its first
    # pass be over before counting keys.
    deadline = time.monotonic() + 30
    while "worker service_key_rotation started" not in live.log_text():
        assert time.monotonic() < deadline, live.log_text()[-2000:]
        time.sleep(0.2)

    before = _served(live)
    assert old_kid in before
    # A key with most of its signing life left is not replaced.
    _rotate(live)
    assert _served(live) == before
    _age_key(live, old_kid)
    _rotate(live)
    served = _served(live)
    assert old_kid in served
    assert len(served) == len(before) + 1
    # A process that signed with the old key keeps doing so until the key nears its end;
    # a fresh process picks the newest key.
    live.stop()
    live.start()
    new_token = token_for(live, auth, pull_push(repo))
    new_kid = _kid(new_token)
    assert new_kid != old_kid
    assert new_kid in served
    for token in (old_token, new_token):
        with v2_client(live, token) as client:
            pulled = client.get(f"/v2/{repo}/manifests/v1", headers={"Accept": image.media_type})
            assert pulled.status_code == 200
            assert pulled.content == image.manifest

    # The docker-login flow (Basic credentials exchanged for a token) works after the change.
    inspected = subprocess.run(
        [
            "skopeo",
            "inspect",
            "--raw",
            "--tls-verify=false",
            f"--creds={owner.username}:{owner.password}",
            f"docker://{live.host}/{repo}:v1",
        ],
        capture_output=True,
        timeout=120,
    )
    assert inspected.returncode == 0, inspected.stderr
    assert inspected.stdout == image.manifest


def test_processes_starting_together_make_one_instance_key(server_factory) -> None:
    """Four processes asking for a signing key at once, with none stored, agree on one."""
    live = server_factory()
    live.stop()
    settings = live.settings
    with live.db() as session:
        session.execute(
            delete(ServiceKey).where(ServiceKey.service == settings.INSTANCE_SERVICE_KEY_SERVICE)
        )
    engines = [make_engine(settings.DB_URI) for _ in range(4)]
    start = threading.Barrier(len(engines))
    kids: list[str] = []

    def ask(engine) -> None:
        ring = KeyRing(settings, make_session_factory(engine))
        start.wait()
        kids.append(ring.signing_key().kid)

    threads = [threading.Thread(target=ask, args=(engine,)) for engine in engines]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
    finally:
        for engine in engines:
            engine.dispose()
    assert len(kids) == len(engines)
    assert len(set(kids)) == 1
    with live.db() as session:
        stored = session.scalar(
            select(func.count())
            .select_from(ServiceKey)
            .where(ServiceKey.service == settings.INSTANCE_SERVICE_KEY_SERVICE)
        )
    assert stored == 1
