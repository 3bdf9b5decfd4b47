"""Sends queued email; failures are logged and retried with a growing delay."""

from __future__ import annotations

import logging

from cargohold.adapters import smtp
from cargohold.domain import email as email_domain
from cargohold.domain import queue
from cargohold.workers.runner import WorkerContext, register

log = logging.getLogger(__name__)

IDLE_DELAY_S = 1.0
# Generous lease: one SMTP exchange is bounded by the client timeout.
LEASE_S = 4 * smtp.TIMEOUT_S
RETRY_BASE_DELAY_S = 10


@register(
    "email",
    "sends queued e-mail (confirmations, recovery, invitations)",
)
def send_queued_email(context: WorkerContext) -> float:
    with context.session_factory() as session:
        claimed = queue.claim(session, email_domain.EMAIL_QUEUE, LEASE_S)
        if claimed is None:
            return IDLE_DELAY_S
        message = email_domain.open_queued(context.settings, claimed.body)
        if message is None:
            log.error("email %d cannot be decrypted with the current key; dropped", claimed.id)
            queue.complete(session, claimed)
            return 0
        try:
            email_domain.send_email(context.settings, message)
        except email_domain.EmailError as exc:
            _failed(session, claimed, message, exc)
            return 0
        queue.complete(session, claimed)
        log.info("email %d sent to %s", claimed.id, message.recipient)
        return 0


def _failed(session, claimed, message, exc) -> None:
    if claimed.retries_remaining <= 0:
        log.error(
            "could not send email %d to %s, giving up: %s", claimed.id, message.recipient, exc
        )
        queue.complete(session, claimed)
        return
    delay = RETRY_BASE_DELAY_S * 2 ** max(0, 4 - claimed.retries_remaining)
    log.warning(
        "could not send email %d to %s (%d retries left, next in %ds): %s",
        claimed.id,
        message.recipient,
        claimed.retries_remaining,
        delay,
        exc,
    )
    queue.retry_later(session, claimed, delay)
