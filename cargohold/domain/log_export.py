"""Audit log exports: queued by the API, written to blob storage as one JSON file by the
`exportactionlogs` worker, then announced by e-mail and/or a POST to a callback URL.

The file is written in batches straight into a storage upload session, so memory stays
bounded however many entries the window holds. Its download link carries a random key; the
table keeps only the key's SHA-256 and the time the file expires.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import secrets
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from email.utils import formatdate
from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.orm import Session

from cargohold.adapters import outbound
from cargohold.auth.context import AuthContext
from cargohold.config import Settings
from cargohold.db.base import utcnow
from cargohold.db.models.accounts import User
from cargohold.db.models.audit import LogEntry, LogExport
from cargohold.db.models.registry import Repository
from cargohold.domain import audit, queue
from cargohold.domain.email import OutgoingEmail, queue_email
from cargohold.domain.errors import ModelError, Unavailable
from cargohold.storage.base import BlobStore

EXPORT_QUEUE = "exportactionlogs"
BATCH_SIZE = 500
DATE_FORMAT = "%m/%d/%Y"

# What a batch of entries looks like in the file; the API renders entries as its listings do.
EntryRenderer = Callable[[Session, list[LogEntry]], list[dict[str, Any]]]


class ExportRefused(ModelError):
    """The request cannot be queued; the message is Quay's."""


class DeliveryFailed(Unavailable):
    """The callback did not take the result; the job is retried later."""


@dataclass
class ExportJob:
    export_id: str
    namespace_id: int
    namespace_name: str
    repository_id: int | None
    repository_name: str | None
    start: str
    end: str
    callback_url: str | None
    callback_email: str | None

    @property
    def window(self) -> tuple[dt.datetime, dt.datetime]:
        return dt.datetime.fromisoformat(self.start), dt.datetime.fromisoformat(self.end)


def check_callback_url(settings: Settings, url: str) -> None:
    """Quay's rule (http or https) plus the outbound guard; a name without an address now is
    accepted here and checked again at delivery."""
    if not url.startswith(("http://", "https://")):
        raise ExportRefused("Invalid callback URL")
    try:
        outbound.check_url(settings, url)
    except outbound.UnresolvedHost:
        return
    except outbound.OutboundRefused as exc:
        raise ExportRefused("Invalid callback URL") from exc


def queue_export(
    session: Session,
    settings: Settings,
    *,
    namespace: User,
    repository_id: int | None,
    repository_name: str | None,
    window: tuple[dt.datetime, dt.datetime],
    callback_url: str | None,
    callback_email: str | None,
) -> str:
    """Validate the targets and queue the job in the caller's transaction; the export id."""
    if callback_url:
        check_callback_url(settings, callback_url)
    if callback_email and "@" not in callback_email:
        raise ExportRefused("Invalid callback e-mail")
    start, end = window
    if end < start:
        raise ExportRefused("Invalid time span selected")
    job = ExportJob(
        export_id=str(uuid.uuid4()),
        namespace_id=namespace.id,
        namespace_name=namespace.username,
        repository_id=repository_id,
        repository_name=repository_name,
        start=start.isoformat(),
        end=end.isoformat(),
        callback_url=callback_url or None,
        callback_email=callback_email or None,
    )
    session.add(LogExport(export_id=job.export_id))
    queue.enqueue(session, EXPORT_QUEUE, asdict(job))
    return job.export_id


@dataclass(frozen=True)
class ExportOutcome:
    """A queued export's id, or the refusal the caller answers with once the attempt's audit
    entry is committed (Quay logs refused exports too)."""

    export_id: str | None = None
    refusal: ExportRefused | None = None


def request_export(
    session: Session,
    settings: Settings,
    *,
    namespace: User,
    repository: Repository | None,
    window: tuple[dt.datetime, dt.datetime],
    callback_url: str | None,
    callback_email: str | None,
    auth: AuthContext,
    ip: str | None,
) -> ExportOutcome:
    """Queue an export and log the attempt (`export_logs_success` or `_failure`)."""
    targets = {"url": callback_url or None, "email": callback_email or None}
    repo_meta = {"repo": repository.name} if repository is not None else {}
    try:
        export_id = queue_export(
            session,
            settings,
            namespace=namespace,
            repository_id=repository.id if repository is not None else None,
            repository_name=repository.name if repository is not None else None,
            window=window,
            callback_url=callback_url,
            callback_email=callback_email,
        )
    except ExportRefused as exc:
        metadata = {**repo_meta, "error": exc.message, **targets}
        audit.log_action(
            session, "export_logs_failure", namespace=namespace, auth=auth, ip=ip, metadata=metadata
        )
        return ExportOutcome(refusal=exc)
    audit.log_action(
        session,
        "export_logs_success",
        namespace=namespace,
        auth=auth,
        repository=repository,
        ip=ip,
        metadata={**repo_meta, "export_id": export_id, **targets},
    )
    return ExportOutcome(export_id=export_id)


# --- the worker's side -----------------------------------------------------------------------


def _entries(session: Session, job: ExportJob) -> Iterator[list[LogEntry]]:
    """The job's entries in batches, newest first, each batch one keyset query."""
    start, end = job.window
    log_filter = audit.LogFilter(
        start=start,
        end=end,
        account_id=job.namespace_id,
        repository_id=job.repository_id,
    )
    before: tuple[dt.datetime, int] | None = None
    while True:
        batch = audit.list_entries(session, log_filter, before=before, limit=BATCH_SIZE)
        if not batch:
            return
        yield batch
        before = (batch[-1].datetime, batch[-1].id)
        # The batch is written out: let its rows go.
        for entry in batch:
            session.expunge(entry)


def _chunks(session: Session, job: ExportJob, render: EntryRenderer) -> Iterator[bytes]:
    start, end = job.window
    details = {
        "start_time": formatdate(start.timestamp()),
        "end_time": formatdate(end.timestamp()),
        "namespace": job.namespace_name,
        "repository": job.repository_name,
    }
    yield (
        f'{{"export_id": {json.dumps(job.export_id)}, "details": {json.dumps(details)}, "logs": ['
    ).encode()
    first = True
    for batch in _entries(session, job):
        for view in render(session, batch):
            yield (b"" if first else b",") + json.dumps(view).encode()
            first = False
    yield b"]}"


def write_file(
    session: Session, store: BlobStore, job: ExportJob, render: EntryRenderer
) -> tuple[str, int]:
    """Stream the export into storage; its digest and size."""
    upload_id = str(uuid.uuid4())
    state = store.begin_upload(upload_id)
    writer = store.open_upload(upload_id, state)
    digest = hashlib.sha256()
    size = 0
    try:
        for chunk in _chunks(session, job, render):
            writer.write(chunk)
            digest.update(chunk)
            size += len(chunk)
        state = writer.close()
    except BaseException:
        writer.abort()
        store.cancel_upload(upload_id, state)
        raise
    name = "sha256:" + digest.hexdigest()
    store.commit_upload(upload_id, state, name)
    return name, size


def _hash_key(file_key: str) -> str:
    return hashlib.sha256(file_key.encode()).hexdigest()


def publish(session: Session, settings: Settings, job: ExportJob, digest: str, size: int) -> str:
    """Record the file with a fresh download key; the download URL."""
    record = session.scalar(select(LogExport).where(LogExport.export_id == job.export_id))
    if record is None:
        record = LogExport(export_id=job.export_id)
        session.add(record)
    file_key = secrets.token_urlsafe(32)
    record.file_key_hash = _hash_key(file_key)
    record.digest = digest
    record.size = size
    record.expires = utcnow() + dt.timedelta(seconds=settings.EXPORT_ACTION_LOGS_SECONDS)
    session.flush()
    return f"{settings.server_url}/exportedlogs/{job.export_id}-{file_key}"


def published(session: Session, job: ExportJob) -> LogExport | None:
    """The job's record once its file is written (a retried job only redelivers)."""
    record = session.scalar(select(LogExport).where(LogExport.export_id == job.export_id))
    return record if record is not None and record.digest is not None else None


def _result(job: ExportJob, status: str, url: str | None) -> dict[str, Any]:
    return {
        "export_id": job.export_id,
        "start_time": job.window[0].strftime(DATE_FORMAT),
        "end_time": (job.window[1] - dt.timedelta(days=1)).strftime(DATE_FORMAT),
        "namespace": job.namespace_name,
        "repository": job.repository_name,
        "exported_data_url": url,
        "status": status,
    }


def post_callback(settings: Settings, job: ExportJob, status: str, url: str | None) -> None:
    """POST the result through the outbound guard, which checks the target again now."""
    if not job.callback_url:
        return
    try:
        with outbound.guarded_client(
            settings, timeout=settings.NOTIFICATION_SEND_TIMEOUT, follow_redirects=False
        ) as client:
            request = client.build_request("POST", job.callback_url, json=_result(job, status, url))
            response = client.send(request, stream=True)
            response.close()
    except outbound.OutboundRefused as exc:
        raise DeliveryFailed(f"callback refused: {exc}") from exc
    except httpx.HTTPError as exc:
        raise DeliveryFailed(f"{type(exc).__name__}: {exc}") from exc
    if response.status_code != 200:
        raise DeliveryFailed(f"{response.status_code} response from the callback URL")


def queue_mail(
    session: Session, settings: Settings, job: ExportJob, status: str, url: str | None
) -> None:
    if not job.callback_email:
        return
    hours = max(1, settings.EXPORT_ACTION_LOGS_SECONDS // 3600)
    if status == "success":
        text = (
            f"The usage logs export {job.export_id} is ready:\n\n{url}\n\n"
            f"The link works for {hours} hour(s).\n"
        )
    else:
        text = f"The usage logs export {job.export_id} failed ({status}).\n"
    queue_email(
        session,
        settings,
        OutgoingEmail(job.callback_email, "Usage logs export complete", text),
    )


def find_file(session: Session, file_id: str) -> LogExport | None:
    """The unexpired export a download id (`<export_id>-<key>`) names."""
    export_id, separator, file_key = file_id[:36], file_id[36:37], file_id[37:]
    if separator != "-" or not file_key:
        return None
    record = session.scalar(
        select(LogExport).where(
            LogExport.export_id == export_id, LogExport.file_key_hash == _hash_key(file_key)
        )
    )
    if record is None or record.digest is None or record.expires is None:
        return None
    return record if record.expires > utcnow() else None


def expired(session: Session, limit: int = 100) -> list[LogExport]:
    return list(
        session.scalars(
            select(LogExport)
            .where(LogExport.expires <= utcnow())
            .order_by(LogExport.id)
            .limit(limit)
        )
    )
