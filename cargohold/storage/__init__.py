"""Storage drivers chosen from Quay's DISTRIBUTED_STORAGE_CONFIG."""

from __future__ import annotations

from typing import Any

from cargohold.config import ConfigError, Settings
from cargohold.storage.base import BlobStore


def _driver(location: str, name: str, params: dict[str, Any], settings: Settings) -> BlobStore:
    if name == "LocalStorage":
        from cargohold.storage.local import LocalStorage

        return LocalStorage(params["storage_path"])
    if name in ("S3Storage", "RadosGWStorage"):
        from cargohold.storage import s3

        driver = s3.S3Storage if name == "S3Storage" else s3.RadosGWStorage
        options = dict(params)
        # Quay redirects blob downloads to the object store unless told to proxy them.
        options.setdefault("direct_download", not settings.FEATURE_PROXY_STORAGE)
        try:
            return driver(**options)
        except TypeError as exc:
            raise ConfigError(f"config key DISTRIBUTED_STORAGE_CONFIG.{location}: {exc}") from exc
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
        return _driver(location, entry[0], entry[1], settings)
    except KeyError as exc:
        raise ConfigError(
            f"config key DISTRIBUTED_STORAGE_CONFIG.{location}: missing parameter {exc.args[0]}"
        ) from exc
