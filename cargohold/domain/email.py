"""Outgoing email: messages are queued in the database and sent over SMTP by the email worker.

Queuing keeps a slow or broken mail server away from API requests. Message bodies can carry
secrets (invite codes), so they are stored encrypted in the queue.
"""

from __future__ import annotations

import json
import smtplib
from dataclasses import asdict, dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from sqlalchemy.orm import Session

from cargohold.auth.secrets import SecretBox
from cargohold.config import Settings
from cargohold.domain import queue

EMAIL_QUEUE = "email"
SMTP_TIMEOUT_S = 30


@dataclass
class OutgoingEmail:
    recipient: str
    subject: str
    text: str


class EmailError(Exception):
    """The message could not be handed to the mail server."""


def queue_email(session: Session, settings: Settings, message: OutgoingEmail) -> None:
    """Queue a message in the caller's transaction: it is sent only if the change commits."""
    sealed = SecretBox(settings.DATABASE_SECRET_KEY).encrypt(json.dumps(asdict(message)))
    queue.enqueue(session, EMAIL_QUEUE, {"sealed": sealed})


def open_queued(settings: Settings, body: dict) -> OutgoingEmail | None:
    """The message in a queue item, or None when it cannot be decrypted (key changed)."""
    plain = SecretBox(settings.DATABASE_SECRET_KEY).decrypt(body.get("sealed", ""))
    if plain is None:
        return None
    return OutgoingEmail(**json.loads(plain))


def _mime(settings: Settings, message: OutgoingEmail) -> EmailMessage:
    mime = EmailMessage()
    mime["From"] = settings.MAIL_DEFAULT_SENDER
    mime["To"] = message.recipient
    mime["Subject"] = message.subject
    mime["Date"] = formatdate(localtime=False)
    mime["Message-ID"] = make_msgid(domain=settings.SERVER_HOSTNAME.split(":")[0] or None)
    mime.set_content(message.text)
    return mime


def send_email(settings: Settings, message: OutgoingEmail) -> None:
    """Deliver one message with the MAIL_* settings; raises EmailError on any failure."""
    if not settings.MAIL_SERVER:
        raise EmailError("MAIL_SERVER is not configured")
    smtp_class = smtplib.SMTP_SSL if settings.MAIL_USE_SSL else smtplib.SMTP
    try:
        with smtp_class(settings.MAIL_SERVER, settings.MAIL_PORT, timeout=SMTP_TIMEOUT_S) as smtp:
            if settings.MAIL_USE_TLS and not settings.MAIL_USE_SSL:
                smtp.starttls()
            if settings.MAIL_USERNAME:
                smtp.login(settings.MAIL_USERNAME, settings.MAIL_PASSWORD)
            smtp.send_message(_mime(settings, message))
    except (OSError, smtplib.SMTPException) as exc:
        raise EmailError(f"{type(exc).__name__}: {exc}") from exc
