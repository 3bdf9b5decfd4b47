"""Quota workers: the registry-size calculation and the namespace-size backfill."""

from __future__ import annotations

import logging
import time

from cargohold.db.base import transaction
from cargohold.domain import quota as quotas
from cargohold.workers.runner import WorkerContext, periodic, register

log = logging.getLogger(__name__)

_started = time.monotonic()


@register(
    "quota_registry_size",
    "computes the registry's total size when a superuser asks for it",
)
@periodic("QUOTA_REGISTRY_SIZE_POLL_PERIOD", lambda settings: settings.FEATURE_QUOTA_MANAGEMENT)
def registry_size(context: WorkerContext) -> None:
    """Compute the registry size when a superuser queued a calculation."""
    with transaction(context.session_factory) as session:
        row_id = quotas.claim_registry_size_run(session)
    if row_id is None:
        return
    with transaction(context.session_factory) as session:
        size = quotas.total_stored_bytes(session)
        quotas.finish_registry_size_run(session, row_id, size)
    log.info("registry size calculated: %d bytes", size)


@register(
    "quota_backfill",
    "recomputes namespace quota usage that is missing or was reset",
)
@periodic(
    "QUOTA_BACKFILL_POLL_PERIOD",
    lambda settings: settings.FEATURE_QUOTA_MANAGEMENT and settings.QUOTA_BACKFILL,
)
def backfill(context: WorkerContext) -> float | None:
    """Recompute namespaces whose cached usage is missing or was reset."""
    settings = context.settings
    waiting = settings.QUOTA_TOTAL_DELAY_SECONDS - (time.monotonic() - _started)
    if waiting > 0:
        return waiting
    with transaction(context.session_factory) as session:
        namespaces = quotas.namespaces_needing_backfill(session, settings.QUOTA_BACKFILL_BATCH_SIZE)
        for namespace in namespaces:
            quotas.recalculate_namespace(session, namespace)
    return None
