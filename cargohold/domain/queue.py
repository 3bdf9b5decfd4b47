"""The database work queue: enqueue, claim (safe across processes), finish, retry."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from cargohold.db.base import is_postgres, utcnow
from cargohold.db.models.queue import QueueItem


@dataclass
class ClaimedItem:
    id: int
    state_id: str
    body: dict[str, Any]
    retries_remaining: int


def enqueue(
    session: Session,
    queue_name: str,
    body: dict[str, Any],
    *,
    available_after: dt.datetime | None = None,
    retries: int = 5,
) -> QueueItem:
    item = QueueItem(
        queue_name=queue_name,
        body=json.dumps(body),
        available_after=available_after or utcnow(),
        retries_remaining=retries,
        state_id=str(uuid.uuid4()),
    )
    session.add(item)
    return item


def claim(session: Session, queue_name: str, processing_seconds: int) -> ClaimedItem | None:
    """Take the oldest available item; an item whose processing lease ran out is available again.

    The claim is a compare-and-set on `state_id`, so two workers can never both win; on
    PostgreSQL, SKIP LOCKED keeps them from waiting on each other.
    """
    now = utcnow()
    query = (
        select(QueueItem)
        .where(
            QueueItem.queue_name == queue_name,
            QueueItem.available_after <= now,
            QueueItem.retries_remaining > 0,
            (QueueItem.available.is_(True))
            | (QueueItem.processing_expires.is_not(None) & (QueueItem.processing_expires <= now)),
        )
        .order_by(QueueItem.id)
        .limit(1)
    )
    if is_postgres(session):
        query = query.with_for_update(skip_locked=True)
    item = session.scalar(query)
    if item is None:
        session.rollback()
        return None
    new_state = str(uuid.uuid4())
    # Read before the update: the session refreshes `item` with the decremented count.
    retries_left = item.retries_remaining - 1
    result = session.execute(
        update(QueueItem)
        .where(QueueItem.id == item.id, QueueItem.state_id == item.state_id)
        .values(
            available=False,
            processing_expires=now + dt.timedelta(seconds=processing_seconds),
            retries_remaining=QueueItem.retries_remaining - 1,
            state_id=new_state,
        )
    )
    session.commit()
    if result.rowcount != 1:
        return None
    return ClaimedItem(item.id, new_state, json.loads(item.body), retries_left)


def complete(session: Session, claimed: ClaimedItem) -> None:
    session.execute(
        QueueItem.__table__.delete().where(
            QueueItem.id == claimed.id, QueueItem.state_id == claimed.state_id
        )
    )
    session.commit()


def retry_later(session: Session, claimed: ClaimedItem, delay_seconds: int) -> None:
    """Give the item back after a failure; it runs again until its retries are used up."""
    session.execute(
        update(QueueItem)
        .where(QueueItem.id == claimed.id, QueueItem.state_id == claimed.state_id)
        .values(
            available=True,
            processing_expires=None,
            available_after=utcnow() + dt.timedelta(seconds=delay_seconds),
        )
    )
    session.commit()


def extend(session: Session, claimed: ClaimedItem, processing_seconds: int) -> bool:
    """Keep a long job's lease alive; False when another worker has taken the item."""
    result = session.execute(
        update(QueueItem)
        .where(QueueItem.id == claimed.id, QueueItem.state_id == claimed.state_id)
        .values(processing_expires=utcnow() + dt.timedelta(seconds=processing_seconds))
    )
    session.commit()
    return result.rowcount == 1
