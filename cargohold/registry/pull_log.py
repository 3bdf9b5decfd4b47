"""Audit entries for pulls, written in batches off the request path.

A pull is the hottest request the registry serves; writing its `pull_repo` entry inline would
add a write transaction to every pull (and serialise them on SQLite). Entries are queued in
memory and a background thread writes them every second in one transaction. An entry can be
lost only if the process dies within that second.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from cargohold.db.base import transaction, utcnow
from cargohold.db.models.accounts import User
from cargohold.domain.audit import ActionByIds, log_actions_by_ids
from cargohold.request_log import with_request_id

log = logging.getLogger(__name__)
FLUSH_INTERVAL_S = 1.0
MAX_QUEUED = 100_000


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
        self,
        *,
        namespace_id: int,
        repository_id: int,
        username: str | None,
        ip: str | None,
        metadata: dict[str, Any],
    ) -> None:
        # The id is read here: the entry is written later, outside the request.
        metadata = with_request_id(metadata)
        self._queue.append(PullEntry(namespace_id, repository_id, username, ip, metadata, utcnow()))
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
                names = {e.username for e in entries if e.username}
                ids = (
                    dict(
                        session.execute(
                            select(User.username, User.id).where(User.username.in_(names))
                        ).all()
                    )
                    if names
                    else {}
                )
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
