"""Quay's DB_CONNECTION_ARGS, read for what they mean to SQLAlchemy and psycopg.

Quay hands these to peewee, whose own options (`autorollback`, `threadlocals`, pool
sizes) are not connection parameters: psycopg refuses them. What each one asks for is
either how cargohold always works or a pool setting; libpq parameters pass through.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)

# Peewee options whose behaviour is built in: sessions roll back on error and every thread
# checks out its own pooled connection.
_ALWAYS_ON = frozenset({"autorollback", "threadlocals", "autoconnect"})

# libpq connection parameters psycopg accepts as keyword arguments.
_LIBPQ = frozenset(
    {
        "sslmode",
        "sslrootcert",
        "sslcert",
        "sslkey",
        "sslpassword",
        "sslcrl",
        "sslcompression",
        "sslsni",
        "connect_timeout",
        "application_name",
        "options",
        "keepalives",
        "keepalives_idle",
        "keepalives_interval",
        "keepalives_count",
        "tcp_user_timeout",
        "target_session_attrs",
        "passfile",
        "channel_binding",
        "gssencmode",
        "krbsrvname",
    }
)

# sqlite3.connect keyword arguments that make sense from configuration.
_SQLITE = frozenset({"timeout"})


@dataclass
class EngineOptions:
    connect_args: dict[str, Any] = field(default_factory=dict)
    # Pool settings a Quay file expresses as connection arguments (peewee's pooled database).
    pool_size: int | None = None
    pool_recycle: int | None = None


def translate(backend: str, raw: dict[str, Any]) -> EngineOptions:
    """Split Quay's arguments into driver parameters and pool settings; warn about the rest."""
    options = EngineOptions()
    passthrough = _LIBPQ if backend == "postgresql" else _SQLITE
    for key, value in raw.items():
        if key in _ALWAYS_ON:
            if value is False:
                log.warning(
                    "DB_CONNECTION_ARGS %s: false is ignored; cargohold always behaves as if true",
                    key,
                )
        elif key in passthrough:
            options.connect_args[key] = value
        elif key == "max_connections" and backend == "postgresql":
            options.pool_size = int(value)
        elif key == "stale_timeout" and backend == "postgresql":
            options.pool_recycle = int(value)
        elif key == "ssl" and backend == "postgresql" and isinstance(value, dict):
            # Quay's MySQL-style {"ca": path} block names the CA to verify the server with.
            if value.get("ca"):
                options.connect_args.setdefault("sslrootcert", value["ca"])
                options.connect_args.setdefault("sslmode", "verify-full")
        else:
            log.warning("DB_CONNECTION_ARGS %s has no meaning for %s and is ignored", key, backend)
    return options
