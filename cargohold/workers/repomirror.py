"""The `repomirror` worker: claims due repository mirrors and syncs them with skopeo."""

from __future__ import annotations

import logging

from cargohold.domain import mirror
from cargohold.domain.mirror_sync import SyncRun
from cargohold.workers.runner import WorkerContext, register

log = logging.getLogger(__name__)


@register("repomirror")
def sync_due_mirror(context: WorkerContext) -> float:
    """Sync one due mirror; look again at once after work, else after REPO_MIRROR_INTERVAL."""
    if not context.settings.FEATURE_REPO_MIRROR:
        return 3600.0
    with context.session_factory() as session:
        claim = mirror.claim_due(session)
    if claim is None:
        return float(context.settings.REPO_MIRROR_INTERVAL)
    outcome = SyncRun(context.session_factory, context.settings, claim).run()
    log.info("mirror sync of config %s ended: %s", claim.config_id, outcome.value)
    return 0.0
