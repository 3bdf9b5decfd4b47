"""The email worker against a real SMTP server: delivery, retry with delay, giving up."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from sqlalchemy import select

from cargohold.config import Settings
from cargohold.db import models  # noqa: F401 - registers every table
from cargohold.db.base import Base, make_engine, make_session_factory, utcnow
from cargohold.db.models.queue import QueueItem
from cargohold.domain.email import EMAIL_QUEUE, OutgoingEmail, queue_email
from cargohold.storage.local import LocalStorage
from cargohold.workers.email import send_queued_email
from cargohold.workers.runner import WorkerContext
from tests.support import server as live
from tests.support.smtp import SmtpServer


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer().start()
    yield server
    server.stop()


@pytest.fixture
def context(tmp_path, smtp: SmtpServer) -> Iterator[WorkerContext]:
    uri = (
        live.create_postgres_database()
        if live.test_backend() == "postgres"
        else f"sqlite:///{tmp_path / 'db.sqlite'}"
    )
    engine = make_engine(uri)
    Base.metadata.create_all(engine)
    settings = Settings(
        DB_URI=uri,
        DATABASE_SECRET_KEY="k" * 32,
        MAIL_SERVER="127.0.0.1",
        MAIL_PORT=smtp.port,
        MAIL_USE_TLS=False,
        MAIL_DEFAULT_SENDER="robot@example.com",
    )
    yield WorkerContext(settings, make_session_factory(engine), LocalStorage(str(tmp_path)))
    engine.dispose()
    if live.test_backend() == "postgres":
        live.drop_postgres_database(uri)


def _queue(context: WorkerContext, recipient: str) -> None:
    with context.session_factory() as session:
        queue_email(session, context.settings, OutgoingEmail(recipient, "Hello", "Body text"))
        session.commit()


def _items(context: WorkerContext) -> list[QueueItem]:
    with context.session_factory() as session:
        return list(session.scalars(select(QueueItem).where(QueueItem.queue_name == EMAIL_QUEUE)))


def test_queued_message_is_stored_encrypted_and_delivered(context, smtp: SmtpServer) -> None:
    _queue(context, "dest@example.com")
    (item,) = _items(context)
    assert "dest@example.com" not in item.body and "Body text" not in item.body
    assert send_queued_email(context) == 0
    mail = smtp.wait_for("dest@example.com", timeout=5)
    assert mail.message["Subject"] == "Hello"
    assert mail.message["From"] == "robot@example.com"
    assert mail.text.strip() == "Body text"
    assert _items(context) == []
    assert send_queued_email(context) > 0  # nothing left: the worker idles


def test_failed_send_is_logged_and_retried_later(context, smtp: SmtpServer, caplog) -> None:
    smtp.set_mode("refuse")
    _queue(context, "later@example.com")
    with caplog.at_level(logging.WARNING, logger="cargohold.workers.email"):
        send_queued_email(context)
    assert "could not send email" in caplog.text and "later@example.com" in caplog.text
    (item,) = _items(context)
    assert item.available is True
    assert item.available_after > utcnow()
    assert item.retries_remaining == 4
    # Not due yet, so the next round does not hammer the mail server.
    refused = smtp.handler.refused
    send_queued_email(context)
    assert smtp.handler.refused == refused


def test_worker_gives_up_after_the_last_retry(context, smtp: SmtpServer, caplog) -> None:
    smtp.set_mode("refuse")
    _queue(context, "never@example.com")
    with context.session_factory() as session:
        session.execute(QueueItem.__table__.update().values(retries_remaining=1))
        session.commit()
    with caplog.at_level(logging.ERROR, logger="cargohold.workers.email"):
        send_queued_email(context)
    assert "giving up" in caplog.text and "never@example.com" in caplog.text
    assert _items(context) == []


def test_unreachable_mail_server_is_a_logged_failure(context, caplog) -> None:
    context.settings.MAIL_PORT = 1
    _queue(context, "nowhere@example.com")
    with caplog.at_level(logging.WARNING, logger="cargohold.workers.email"):
        send_queued_email(context)
    assert "nowhere@example.com" in caplog.text
    assert len(_items(context)) == 1
