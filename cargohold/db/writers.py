"""A queue for SQLite's one writer.

SQLite lets one transaction write at a time; a writer that finds the lock taken polls for it,
sleeping up to 100 ms between tries, so under a steady stream of small write transactions
(pushes) a waiter keeps missing the moment the lock is free and its latency becomes a long
tail. Writers that start with `begin_write` queue here instead: a thread lock within the
process and an flock on a file next to the database across processes (the kernel wakes the
next waiter as soon as the holder lets go, and drops a dead holder's lock). The queue is left
when the session's transaction ends, after its COMMIT or ROLLBACK.
"""

from __future__ import annotations

import fcntl
import os
import threading
from pathlib import Path

from sqlalchemy import Connection, Pool, event
from sqlalchemy.orm import Session, SessionTransaction
from sqlalchemy.pool import ConnectionPoolEntry

_SESSION_KEY = "cargohold.writer_queue"
# A thread that waits longer than this goes on without the queue, to SQLite's own wait.
_QUEUE_TIMEOUT_SECONDS = 30.0


class WriterQueue:
    """The writers of one SQLite database file in this process, in line for its write lock."""

    def __init__(self, lock_path: Path) -> None:
        self._lock_path = lock_path
        self._threads = threading.Lock()
        self._owner: int | None = None
        self._fd: int | None = None

    def enter(self) -> bool:
        """Wait for this writer's turn; False when it goes on without the queue (it already
        holds it in another session of this thread, or waited too long)."""
        if self._owner == threading.get_ident():
            return False
        if not self._threads.acquire(timeout=_QUEUE_TIMEOUT_SECONDS):
            return False
        try:
            if self._fd is None:
                self._fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o600)
            fcntl.flock(self._fd, fcntl.LOCK_EX)
        except OSError:
            self._threads.release()
            return False
        self._owner = threading.get_ident()
        return True

    def leave(self) -> None:
        self._owner = None
        try:
            if self._fd is not None:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            self._threads.release()


_queues: dict[str, WriterQueue] = {}
_queues_lock = threading.Lock()


def queue_for(database: str) -> WriterQueue:
    """The queue of a database file, one per file and process."""
    with _queues_lock:
        queue = _queues.get(database)
        if queue is None:
            queue = _queues[database] = WriterQueue(Path(f"{database}-writer.lock"))
        return queue


class _Turn:
    """A writer's place at the head of a queue; leaving twice is harmless."""

    def __init__(self, queue: WriterQueue) -> None:
        self._queue: WriterQueue | None = queue
        self._lock = threading.Lock()

    def leave(self) -> None:
        with self._lock:
            queue, self._queue = self._queue, None
        if queue is not None:
            queue.leave()


def join(session: Session, connection: Connection, queue: WriterQueue) -> None:
    """Wait in `queue` until the session's transaction may write. It leaves when that
    transaction ends, or at the latest when its connection goes back to the pool (a session
    dropped without being closed)."""
    if queue.enter():
        turn = _Turn(queue)
        session.info[_SESSION_KEY] = turn
        connection.info[_SESSION_KEY] = turn


def leave(session: Session) -> None:
    """Leave the queue now: the write lock could not be taken after all."""
    turn = session.info.pop(_SESSION_KEY, None)
    if turn is not None:
        turn.leave()


@event.listens_for(Session, "after_transaction_end")
def _transaction_ended(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:
        leave(session)


@event.listens_for(Pool, "checkin")
def _connection_returned(dbapi_connection: object, record: ConnectionPoolEntry) -> None:
    turn = record.info.pop(_SESSION_KEY, None) if record is not None else None
    if turn is not None:
        turn.leave()
