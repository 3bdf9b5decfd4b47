"""buildah: the command lines of rootless image builds in a build's private storage.

Each build keeps its images in its own folder with the vfs driver, so no kernel overlay
support is needed and nothing is shared between builds. Where and as whom the commands run
(the sandbox, the build user) is the build worker's business.
"""

from __future__ import annotations

import shutil
from pathlib import Path

BUILDAH = "buildah"


def available() -> bool:
    return shutil.which(BUILDAH) is not None


def storage_command(storage: Path) -> list[str]:
    """`buildah` working on the image storage kept under `storage`."""
    return [
        BUILDAH,
        "--root",
        str(storage / "storage"),
        "--runroot",
        str(storage / "runroot"),
        "--storage-driver",
        "vfs",
    ]


def bud_command(
    storage: Path,
    *,
    runtime: str,
    network: str,
    dns: str | None,
    ulimits: list[str],
    dockerfile: Path,
    tag: str,
    context: Path,
) -> list[str]:
    """`buildah bud` with every RUN step an OCI container run by `runtime`."""
    return [
        *storage_command(storage),
        "bud",
        "--isolation",
        "oci",
        "--runtime",
        runtime,
        "--network",
        network,
        *(["--dns", dns] if dns else []),
        *ulimits,
        "-f",
        str(dockerfile),
        "-t",
        tag,
        str(context),
    ]
