"""Rotates the registry's own signing key before it stops being usable."""

from __future__ import annotations

import logging

from cargohold.db.base import transaction
from cargohold.domain.service_keys.admin import rotate_instance_key_if_due
from cargohold.workers.runner import WorkerContext, register

log = logging.getLogger(__name__)


@register(
    "service_key_rotation",
    "rotates this instance's service signing key before it expires",
)
def rotate_instance_key(context: WorkerContext) -> float:
    """Runs twice per INSTANCE_SERVICE_KEY_REFRESH and makes a new key when the current one
    has less than half that period of signing left, so a fresh key is always ready in time.
    """
    half_period_s = context.settings.INSTANCE_SERVICE_KEY_REFRESH * 30
    if context.settings.REGISTRY_STATE == "readonly":
        return half_period_s
    with transaction(context.session_factory) as session:
        rotated = rotate_instance_key_if_due(session, context.settings, half_period_s)
    if rotated:
        log.info("created a new instance service key")
    return half_period_s
