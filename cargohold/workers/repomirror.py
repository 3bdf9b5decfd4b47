"""The `repomirror` worker: claims due repository mirrors and syncs them with skopeo."""

from __future__ import annotations

import datetime as dt
import logging
import tempfile
from pathlib import Path

from cargohold import metrics
from cargohold.domain import mirror
from cargohold.domain.mirror_sync import SyncRun, SyncStatus
from cargohold.workers.heartbeat import Heartbeat
from cargohold.workers.runner import WorkerContext, register

log = logging.getLogger(__name__)


@register(
    "repomirror",
    "syncs due repository mirrors from their upstream registries with skopeo",
)
def sync_due_mirror(context: WorkerContext) -> float:
    """Sync one due mirror; look again at once after work, else after REPO_MIRROR_INTERVAL."""
    if not context.settings.FEATURE_REPO_MIRROR:
        return 3600.0
    lease = dt.timedelta(seconds=context.settings.WORKER_HEARTBEAT_TIMEOUT)
    with context.session_factory() as session:
        claim = mirror.claim_due(session, lease)
    if claim is None:
        return float(context.settings.REPO_MIRROR_INTERVAL)
    outcome = _run_sync(context, claim)
    log.info("mirror sync of config %s ended: %s", claim.config_id, outcome.value)
    metrics.MIRROR_OUTCOMES.labels(outcome.value.lower()).inc()
    return 0.0


def _run_sync(context: WorkerContext, claim: mirror.Claim) -> SyncStatus:
    """One sync, its claim kept alive by a heartbeat; released with its outcome."""
    run = SyncRun(context.session_factory, context.settings, claim)
    plan = run.load_plan()
    if plan is None:
        return SyncStatus.FAIL
    interval = context.settings.WORKER_HEARTBEAT_TIMEOUT / 3
    with (
        Heartbeat(run.beat, interval),
        tempfile.TemporaryDirectory(prefix="cargohold-mirror-") as workdir,
    ):
        outcome = run.sync(plan, Path(workdir))
    run.release(outcome)
    return outcome
