"""The garbage-collection worker: reclaims expired tag history, deleted repositories and
the manifests and blobs nothing refers to any more."""

from __future__ import annotations

import logging

from cargohold.db.base import transaction
from cargohold.domain import gc
from cargohold.workers.runner import WorkerContext, register

log = logging.getLogger(__name__)


@register("gc")
def garbage_collection(context: WorkerContext) -> float:
    period = float(context.settings.GARBAGE_COLLECTION_FREQUENCY)
    if not context.settings.FEATURE_GARBAGE_COLLECTION:
        return period
    with transaction(context.session_factory) as session:
        collected = gc.collect(session, context.settings)
    gc.delete_stored_blobs(context.store, collected.blob_digests)
    if collected.anything:
        log.info(
            "gc: %d tag rows, %d manifests, %d repositories, %d blobs",
            collected.tags,
            collected.manifests,
            collected.repositories,
            len(collected.blob_digests),
        )
        # More may be waiting beyond this batch.
        return 0.1
    return period
