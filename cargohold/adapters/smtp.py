"""SMTP: hands one message to the configured mail server."""

from __future__ import annotations

import smtplib
from dataclasses import dataclass
from email.message import EmailMessage

TIMEOUT_S = 30


class SmtpFailed(Exception):
    """The mail server could not be reached or refused the message."""


@dataclass(frozen=True)
class MailServer:
    host: str
    port: int
    use_ssl: bool
    use_tls: bool
    username: str
    password: str


def send(server: MailServer, message: EmailMessage) -> None:
    """Deliver `message`; raises SmtpFailed naming the failure's kind and words."""
    smtp_class = smtplib.SMTP_SSL if server.use_ssl else smtplib.SMTP
    try:
        with smtp_class(server.host, server.port, timeout=TIMEOUT_S) as smtp:
            if server.use_tls and not server.use_ssl:
                smtp.starttls()
            if server.username:
                smtp.login(server.username, server.password)
            smtp.send_message(message)
    except (OSError, smtplib.SMTPException) as exc:
        raise SmtpFailed(f"{type(exc).__name__}: {exc}") from exc
