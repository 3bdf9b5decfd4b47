"""Writes queued audit-log exports to storage and announces them; drops expired ones.

A callback that fails is retried with a growing delay (the file is written once, and each
retry sends a fresh link); the e-mail goes out once the callback, if any, took the result.
"""

from __future__ import annotations

import logging

from cargohold.db.session import DbSession
from cargohold.domain import log_entries, log_export, log_export_expiry, queue
from cargohold.storage.base import StorageError
from cargohold.workers.runner import WorkerContext, register

log = logging.getLogger(__name__)

IDLE_DELAY_S = 1.0
# Long windows take a while to write; another worker may take the job only after this.
LEASE_S = 30 * 60
RETRY_BASE_DELAY_S = 10


@register(
    "exportactionlogs",
    "writes requested audit-log exports to storage and mails or posts their links",
)
def export_action_logs(context: WorkerContext) -> float:
    if not context.settings.FEATURE_LOG_EXPORT:
        return 60.0
    with context.session_factory() as session:
        log_export_expiry.drop_expired(session, context.store)
        claimed = queue.claim(session, log_export.EXPORT_QUEUE, LEASE_S)
        if claimed is None:
            return IDLE_DELAY_S
        job = log_export.ExportJob(**claimed.body)
        try:
            url = _written(context, session, job)
        except StorageError as exc:
            session.rollback()
            _failed(context, session, claimed, job, exc)
            return 0
        try:
            log_export.post_callback(context.settings, job, "success", url)
        except log_export.DeliveryFailed as exc:
            session.commit()
            _retry(session, claimed, job, exc)
            return 0
        log_export.queue_mail(session, context.settings, job, "success", url)
        session.commit()
        queue.complete(session, claimed)
        log.info("log export %s delivered", job.export_id)
        return 0


def _written(context: WorkerContext, session: DbSession, job: log_export.ExportJob) -> str:
    """The job's download URL, writing the file unless an earlier try already did."""
    record = log_export.published(session, job)
    if record is not None and record.digest is not None and record.size is not None:
        digest, size = record.digest, record.size
    else:
        digest, size = log_export.write_file(
            session, context.store, job, log_entries.export_renderer(context.settings)
        )
    return log_export.publish(session, context.settings, job, digest, size)


def _retry(
    session: DbSession, claimed: queue.ClaimedItem, job: log_export.ExportJob, exc: Exception
) -> None:
    if claimed.retries_remaining <= 0:
        log.error("log export %s: giving up on its callback: %s", job.export_id, exc)
        queue.complete(session, claimed)
        return
    delay = RETRY_BASE_DELAY_S * 2 ** max(0, 4 - claimed.retries_remaining)
    log.warning("log export %s: callback failed, next try in %ds: %s", job.export_id, delay, exc)
    queue.retry_later(session, claimed, delay)


def _failed(
    context: WorkerContext,
    session: DbSession,
    claimed: queue.ClaimedItem,
    job: log_export.ExportJob,
    exc: Exception,
) -> None:
    """Storage failed: try again later, or tell the requester that the export failed."""
    if claimed.retries_remaining > 0:
        log.warning("log export %s: storage failed, retrying: %s", job.export_id, exc)
        queue.retry_later(session, claimed, RETRY_BASE_DELAY_S)
        return
    log.error("log export %s failed: %s", job.export_id, exc)
    try:
        log_export.post_callback(context.settings, job, "failed", None)
    except log_export.DeliveryFailed as callback_exc:
        log.warning("log export %s: failure not delivered: %s", job.export_id, callback_exc)
    log_export.queue_mail(session, context.settings, job, "failed", None)
    session.commit()
    queue.complete(session, claimed)
