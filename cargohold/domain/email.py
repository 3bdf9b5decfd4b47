"""Outgoing email: messages are queued in the database and sent over SMTP by the email worker.

Queuing keeps a slow or broken mail server away from API requests. Message bodies can carry
secrets (invite codes), so they are stored encrypted in the queue.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from sqlalchemy.orm import Session

from cargohold.adapters import smtp
from cargohold.auth.secrets import SecretBox
from cargohold.config import Settings
from cargohold.domain import queue

EMAIL_QUEUE = "email"


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
    server = smtp.MailServer(
        host=settings.MAIL_SERVER,
        port=settings.MAIL_PORT,
        use_ssl=settings.MAIL_USE_SSL,
        use_tls=settings.MAIL_USE_TLS,
        username=settings.MAIL_USERNAME,
        password=settings.MAIL_PASSWORD,
    )
    try:
        smtp.send(server, _mime(settings, message))
    except smtp.SmtpFailed as exc:
        raise EmailError(str(exc)) from exc
