"""Applies auto-prune policies, repository by repository, in bounded transactions."""

from __future__ import annotations

import logging

from cargohold.db.base import transaction
from cargohold.domain import autoprune
from cargohold.workers.runner import WorkerContext, periodic, register

log = logging.getLogger(__name__)

_REPOSITORY_PAGE = 50


@register(
    "autoprune",
    "applies every auto-prune policy to its repositories (AUTOPRUNE_POLL_PERIOD_SEC)",
)
@periodic(
    "AUTOPRUNE_POLL_PERIOD_SEC",
    lambda settings: settings.FEATURE_AUTO_PRUNE and settings.REGISTRY_STATE != "readonly",
)
def apply_autoprune_policies(context: WorkerContext) -> None:
    """One pass over every repository a policy covers; then sleep until the next pass."""
    after_id = 0
    while not context.stopping.is_set():
        with transaction(context.session_factory) as session:
            page = autoprune.repositories_with_policies(session, after_id, _REPOSITORY_PAGE)
        if not page:
            break
        for repository_id in page:
            try:
                _prune_repository(context, repository_id)
            except Exception:
                # One repository's failure must not stop the others from being pruned.
                log.exception("autoprune failed for repository %d", repository_id)
        after_id = page[-1]


def _prune_repository(context: WorkerContext, repository_id: int) -> None:
    """Batches of at most AUTOPRUNE_TAG_BATCH_SIZE tags, each planned afresh in its own
    transaction, so a tag pushed meanwhile is judged by the repository as it is now."""
    size = max(1, context.settings.AUTOPRUNE_TAG_BATCH_SIZE)
    while not context.stopping.is_set():
        with transaction(context.session_factory) as session:
            repository, names = autoprune.plan(session, repository_id)
            if repository is None or not names:
                return
            pruned = autoprune.prune(session, repository, names[:size])
        log.info("autoprune ended %d tags in repository %d", pruned, repository_id)
        if pruned == 0:
            return
