"""The garbage collector as a background worker: a pass every GARBAGE_COLLECTION_FREQUENCY
seconds (Quay's key), unless FEATURE_GARBAGE_COLLECTION is off."""

from __future__ import annotations

import logging

from cargohold import metrics
from cargohold.db.base import utcnow
from cargohold.domain import gc
from cargohold.workers.runner import WorkerContext, periodic, register

log = logging.getLogger(__name__)


@register(
    "gc",
    "collects unreferenced manifests, blobs and stale uploads (GARBAGE_COLLECTION_FREQUENCY)",
)
@periodic("GARBAGE_COLLECTION_FREQUENCY", lambda settings: settings.FEATURE_GARBAGE_COLLECTION)
def collect_garbage(context: WorkerContext) -> None:
    report = gc.run_pass(context.session_factory, context.store, context.settings, now=utcnow())
    metrics.GC_RECLAIMED_BYTES.inc(report.blob_bytes)
    if report.anything:
        log.info("%s", report.summary())
