"""Storage drivers chosen from Quay's DISTRIBUTED_STORAGE_CONFIG."""

from __future__ import annotations

from typing import Any

from cargohold.config import ConfigError, Settings
from cargohold.storage.base import BlobStore


def _driver(name: str, params: dict[str, Any]) -> BlobStore:
    if name == "LocalStorage":
        from cargohold.storage.local import LocalStorage

        return LocalStorage(params["storage_path"])
    raise ConfigError(
        f"config key DISTRIBUTED_STORAGE_CONFIG: storage driver {name!r} is not supported"
    )


def make_store(settings: Settings) -> BlobStore:
    """The store for the first preferred location."""
    location = settings.DISTRIBUTED_STORAGE_PREFERENCE[0]
    entry = settings.DISTRIBUTED_STORAGE_CONFIG[location]
    if not isinstance(entry, list) or len(entry) != 2 or not isinstance(entry[1], dict):
        raise ConfigError(
            f"config key DISTRIBUTED_STORAGE_CONFIG.{location}: must be [DriverName, {{parameters}}]"
        )
    try:
        return _driver(entry[0], entry[1])
    except KeyError as exc:
        raise ConfigError(
            f"config key DISTRIBUTED_STORAGE_CONFIG.{location}: missing parameter {exc.args[0]}"
        ) from exc
