"""Every model module, imported so that the metadata knows all tables."""

from cargohold.db.models import (
    accounts,
    audit,
    builds,
    confirmations,
    keys,
    messages,
    mirror,
    notifications,
    policies,
    prototypes,
    proxy,
    queue,
    quota,
    registry,
)

__all__ = [
    "accounts",
    "audit",
    "builds",
    "confirmations",
    "keys",
    "messages",
    "mirror",
    "notifications",
    "policies",
    "prototypes",
    "proxy",
    "queue",
    "quota",
    "registry",
]
