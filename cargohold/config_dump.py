"""The running configuration as Quay's superuser config dump shows it, with secrets masked.

Quay masks a fixed list of key names. Ours is wider (any key naming a password, secret,
token, private or access key, and database URIs, which carry passwords), and the mask does
not reveal a secret's length.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cargohold.config import ENV_PREFIX, Settings, parse_env_value

MASK = "**********"
_SECRET_NAMES = frozenset({"db_uri", "enable_health_debug_secret", "ldap_admin_passwd"})
_SECRET_WORDS = ("password", "passwd", "secret", "credential", "private_key", "psk")
_SECRET_SUFFIXES = ("_key", "_key_id", "_token")


def is_secret_name(name: str) -> bool:
    lowered = name.lower()
    return (
        lowered in _SECRET_NAMES
        or any(word in lowered for word in _SECRET_WORDS)
        or lowered.endswith(_SECRET_SUFFIXES)
    )


def _masked(value: Any) -> Any:
    """Everything under a secret name is hidden, keeping only the shape of containers."""
    if isinstance(value, Mapping):
        return {key: _masked(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_masked(item) for item in value]
    if isinstance(value, bool) or value is None:
        return value
    return MASK


def redact(value: Any, name: str | None = None) -> Any:
    """`value` (found under `name`) with the values of secret-named keys masked, at any depth."""
    if name is not None and is_secret_name(name):
        return _masked(value)
    if isinstance(value, Mapping):
        return {key: redact(item, str(key)) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [redact(item) for item in value]
    return value


def _dumpable(value: Any) -> bool:
    """Quay lists only plain values: strings, numbers, booleans, lists and mappings."""
    return isinstance(value, str | int | float | bool | list | tuple | dict)


def config_dump(settings: Settings, environ: Mapping[str, str]) -> dict[str, Any]:
    """`config`: the keys cargohold knows; `warning`: keys it read but does not use; `env`: the
    CARGOHOLD_* overrides (the rest of the environment is no business of an API client);
    `schema`: the JSON schema of the settings."""
    known = {
        name: redact(value, name)
        for name, value in settings.model_dump(exclude=set(settings.model_extra or {})).items()
        if _dumpable(value)
    }
    unknown = {
        name: redact(value, name)
        for name, value in (settings.model_extra or {}).items()
        if _dumpable(value)
    }
    overrides = {
        name: redact(parse_env_value(value), name[len(ENV_PREFIX) :])
        for name, value in environ.items()
        if name.startswith(ENV_PREFIX)
    }
    return {
        "config": known,
        "warning": unknown,
        "env": overrides,
        "schema": Settings.model_json_schema(),
    }
