"""What the server keeps on disk is for the server's user alone.

Builds run as another, unprivileged user; even one that left its sandbox must find nothing
of the server's to read. The server creates its files private (umask 077) and warns at
start-up about any it finds readable by others.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

from cargohold.config import Settings

log = logging.getLogger(__name__)

PRIVATE_UMASK = 0o077


def make_new_files_private() -> None:
    os.umask(PRIVATE_UMASK)


def server_paths(settings: Settings, config_dir: str | os.PathLike[str] | None) -> list[Path]:
    """The data folder, SQLite database, local blob storage and config file in use."""
    paths = [Path(settings.DATA_DIR)]
    if settings.DB_URI.startswith("sqlite:///"):
        paths.append(Path(settings.DB_URI.removeprefix("sqlite:///")))
    for driver, params in settings.DISTRIBUTED_STORAGE_CONFIG.values():
        if driver == "LocalStorage" and params.get("storage_path"):
            paths.append(Path(params["storage_path"]))
    if config_dir is not None:
        paths.append(Path(config_dir) / "config.yaml")
    return paths


def exposed(paths: list[Path]) -> list[tuple[Path, int]]:
    """Those of `paths` that exist and that group or others may access, with their modes."""
    found = []
    for path in paths:
        try:
            mode = stat.S_IMODE(path.stat().st_mode)
        except OSError:
            continue
        if mode & 0o077:
            found.append((path, mode))
    return found


def warn_if_exposed(settings: Settings, config_dir: str | os.PathLike[str] | None) -> None:
    for path, mode in exposed(server_paths(settings, config_dir)):
        wanted = "0700" if path.is_dir() else "0600"
        log.warning(
            "%s is accessible to other users (mode %04o); builds run as another user, "
            "so make it %s (chmod %s %s)",
            path,
            mode,
            wanted,
            wanted,
            path,
        )
