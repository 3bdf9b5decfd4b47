"""Delivers queued repository notifications, and looks for tags about to expire.

A failed delivery counts against its notification and is tried again with a doubling delay;
after `MAX_FAILURES` failures in a row the notification is skipped until its failures are
reset through the API, as in Quay.
"""

from __future__ import annotations

import logging
import time

from cargohold.db.session import DbSession
from cargohold.domain import notification_delivery as delivery_rules
from cargohold.domain import notification_events as events
from cargohold.domain import queue
from cargohold.domain import repo_notifications as rules
from cargohold.domain.tags import now_ms
from cargohold.workers.runner import WorkerContext, register

log = logging.getLogger(__name__)

IDLE_DELAY_S = 1.0


def _lease_seconds(context: WorkerContext) -> int:
    # Redirects may each take the full timeout; the lease outlives all of them.
    return 8 * context.settings.NOTIFICATION_SEND_TIMEOUT + 30


@register(
    "notification",
    "delivers queued repository notifications (webhook, e-mail, Slack)",
)
def deliver_notifications(context: WorkerContext) -> float:
    with context.session_factory() as session:
        claimed = queue.claim(session, rules.NOTIFICATION_QUEUE, _lease_seconds(context))
        if claimed is None:
            return IDLE_DELAY_S
        delivery = delivery_rules.load(session, claimed.body)
        session.rollback()
        if delivery is None:
            queue.complete(session, claimed)
            return 0
        if not events.should_perform(delivery.event, delivery.event_config, delivery.event_data):
            queue.complete(session, claimed)
            return 0
        try:
            delivery_rules.perform(session, context.settings, delivery)
        except delivery_rules.DeliveryFailed as exc:
            session.rollback()
            delivery_rules.finish(session, delivery, succeeded=False)
            _retry(context, session, claimed, exc)
            return 0
        delivery_rules.finish(session, delivery, succeeded=True)
        queue.complete(session, claimed)
        return 0


def _retry(
    context: WorkerContext, session: DbSession, claimed: queue.ClaimedItem, exc: Exception
) -> None:
    if claimed.retries_remaining <= 0:
        log.warning("notification delivery %d failed, giving up: %s", claimed.id, exc)
        queue.complete(session, claimed)
        return
    attempt = rules.QUEUE_RETRIES - claimed.retries_remaining
    delay = context.settings.NOTIFICATION_RETRY_DELAY_SEC * 2 ** max(0, attempt - 1)
    log.warning(
        "notification delivery %d failed (%d retries left, next in %ds): %s",
        claimed.id,
        claimed.retries_remaining,
        delay,
        exc,
    )
    queue.retry_later(session, claimed, delay)


@register(
    "notification_expiry",
    "finds tags about to expire and raises repo_image_expiry events",
)
def scan_expiring_tags(context: WorkerContext) -> float:
    started = time.monotonic()
    with context.session_factory() as session:
        queued = rules.scan_expiring_tags(session, context.settings, now_ms())
    if queued:
        log.info("queued %d repo_image_expiry notifications", queued)
    return max(1.0, context.settings.NOTIFICATION_EXPIRY_SCAN_SEC - (time.monotonic() - started))
