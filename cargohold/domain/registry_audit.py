"""Audit entries for /v2 requests: pushes and deletes in the request's transaction, pulls in
batches off the request path.

A pull is the hottest request the registry serves; writing its `pull_repo` entry inline would
add a write transaction to every pull (and serialise them on SQLite). Entries are queued in
memory and a background thread writes them every second in one transaction. An entry can be
lost only if the process dies within that second.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from cargohold.db.base import transaction, utcnow
from cargohold.db.models.accounts import User
from cargohold.domain.audit import ActionByIds, log_action_by_ids, log_actions_by_ids
from cargohold.domain.repositories import RepositoryRef
from cargohold.request_log import with_request_id

log = logging.getLogger(__name__)
FLUSH_INTERVAL_S = 1.0
MAX_QUEUED = 100_000


@dataclass(frozen=True)
class Actor:
    """Who made a /v2 request, as its audit entries name them."""

    username: str | None
    entity_kind: str
    ip: str | None
    useragent: str | None


def entry_metadata(
    namespace: str, name: str, actor: Actor, metadata: dict[str, Any]
) -> dict[str, Any]:
    return {
        "repo": name,
        "namespace": namespace,
        "useragent": actor.useragent,
        "entity_kind": actor.entity_kind,
        **metadata,
    }


def _performer_ids(session: Session, usernames: Iterable[str | None]) -> dict[str, int]:
    names = {name for name in usernames if name}
    if not names:
        return {}
    rows = session.execute(select(User.username, User.id).where(User.username.in_(names)))
    return dict(rows.tuples().all())


def _performer_id(session: Session, ref: RepositoryRef, namespace: str, actor: Actor) -> int | None:
    # A user pushing to their own namespace is that namespace's row: usernames are unique and
    # the repository was found by this namespace name.
    if actor.username is not None and actor.username == namespace:
        return ref.namespace_id
    return _performer_ids(session, [actor.username]).get(actor.username or "")


def log_repository_action(
    session: Session,
    kind: str,
    ref: RepositoryRef,
    namespace: str,
    name: str,
    actor: Actor,
    metadata: dict[str, Any],
) -> None:
    """One entry about a repository, in the caller's transaction."""
    log_action_by_ids(
        session,
        kind,
        namespace_id=ref.namespace_id,
        performer_id=_performer_id(session, ref, namespace, actor),
        repository_id=ref.id,
        ip=actor.ip,
        metadata=entry_metadata(namespace, name, actor, metadata),
    )


@dataclass
class PullEntry:
    namespace_id: int
    repository_id: int
    username: str | None
    ip: str | None
    metadata: dict[str, Any]
    when: Any


class PullLog:
    def __init__(self, session_factory: sessionmaker[Session]) -> None:
        self._session_factory = session_factory
        self._queue: deque[PullEntry] = deque(maxlen=MAX_QUEUED)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()

    def record(
        self, ref: RepositoryRef, namespace: str, name: str, actor: Actor, metadata: dict[str, Any]
    ) -> None:
        # The id is read here: the entry is written later, outside the request.
        metadata = with_request_id(entry_metadata(namespace, name, actor, metadata))
        entry = PullEntry(ref.namespace_id, ref.id, actor.username, actor.ip, metadata, utcnow())
        self._queue.append(entry)
        if self._thread is None:
            self._start()

    def _start(self) -> None:
        with self._start_lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="pull-log", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(FLUSH_INTERVAL_S)
            self.flush()

    def flush(self) -> None:
        entries: list[PullEntry] = []
        while self._queue:
            entries.append(self._queue.popleft())
        if not entries:
            return
        try:
            with transaction(self._session_factory) as session:
                ids = _performer_ids(session, (entry.username for entry in entries))
                log_actions_by_ids(
                    session,
                    "pull_repo",
                    (
                        ActionByIds(
                            namespace_id=entry.namespace_id,
                            performer_id=ids.get(entry.username) if entry.username else None,
                            repository_id=entry.repository_id,
                            ip=entry.ip,
                            metadata=entry.metadata,
                            when=entry.when,
                        )
                        for entry in entries
                    ),
                )
        except Exception:
            log.exception("could not write %d pull_repo audit entries", len(entries))

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.flush()
