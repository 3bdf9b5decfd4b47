"""A small base image made from this machine's own files, so that a Containerfile can be
built with no registry to pull from: static busybox as the shell, and the Python running
the tests installed under /usr/local the way the official python images lay it out."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

_LDD_PATH = re.compile(r"(/\S+) \(0x")
_SKIPPED = shutil.ignore_patterns(
    "site-packages", "test", "tests", "__pycache__", "idlelib", "tkinter", "turtledemo"
)


def _run(*args: str) -> str:
    return subprocess.run(args, check=True, capture_output=True, text=True).stdout.strip()


def _shared_libraries(binaries: list[Path]) -> set[Path]:
    found: set[Path] = set()
    for binary in binaries:
        done = subprocess.run(["ldd", str(binary)], capture_output=True, text=True, check=False)
        found.update(Path(match) for match in _LDD_PATH.findall(done.stdout))
    return found


def _copy_into(root: Path, source: Path, target: Path | None = None) -> None:
    destination = root / (target or source).relative_to("/")
    destination.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(source, destination)  # follows links: the real library under its soname


def build_base_image(name: str) -> str:
    """Commit the base image `name` and return it."""
    prefix = Path(sys.base_prefix)
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    container = _run("buildah", "from", "scratch")
    try:
        root = Path(_run("buildah", "mount", container))
        (root / "bin").mkdir()
        shutil.copy2("/bin/busybox", root / "bin" / "busybox")
        for applet in _run("/bin/busybox", "--list").split():
            if not (root / "bin" / applet).exists():
                (root / "bin" / applet).symlink_to("busybox")
        local = root / "usr" / "local"
        shutil.copytree(prefix / "lib" / version, local / "lib" / version, ignore=_SKIPPED)
        (local / "lib" / version / "site-packages").mkdir()
        libpython = sorted((prefix / "lib").glob("libpython*.so*"))
        for library in libpython:
            _copy_into(root, library, Path("/usr/local/lib") / library.name)
        executable = prefix / "bin" / version
        _copy_into(root, executable, Path("/usr/local/bin") / version)
        for alias in ("python3", "python"):
            (local / "bin" / alias).symlink_to(version)
        modules = list((prefix / "lib" / version / "lib-dynload").glob("*.so"))
        # Debian's python:slim images carry the system libraries binary wheels need: take
        # those the test environment's own wheels link against (glibc, libgcc, libstdc++).
        wheels = list(Path(sys.prefix).glob("lib/python*/site-packages/**/*.so*"))
        for library in _shared_libraries([executable, *libpython, *modules, *wheels]):
            if not str(library).startswith((str(prefix), sys.prefix)):
                _copy_into(root, library)
        (root / "etc").mkdir()
        (root / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
        (root / "etc" / "group").write_text("root:x:0:\n")
        for folder, mode in (("tmp", 0o1777), ("root", 0o700)):
            (root / folder).mkdir()
            os.chmod(root / folder, mode)
        _run("buildah", "unmount", container)
        _run(
            "buildah", "config",
            "--env", "PATH=/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "--env", "LD_LIBRARY_PATH=/usr/local/lib",
            container,
        )  # fmt: skip
        _run("buildah", "commit", "--quiet", container, name)
    finally:
        subprocess.run(["buildah", "rm", container], capture_output=True, check=False)
    return name


def wheel_from_installed(distribution: str, folder: Path) -> Path:
    """A wheel of an installed pure-Python distribution, for packages a local index lacks."""
    from importlib.metadata import distribution as find

    dist = find(distribution)
    files = [
        f for f in dist.files or [] if "__pycache__" not in str(f) and not str(f).startswith("..")
    ]
    name = dist.metadata["Name"].replace("-", "_")
    wheel = folder / f"{name}-{dist.version}-py3-none-any.whl"
    folder.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(wheel, "w") as archive:
        for relative in files:
            path = Path(dist.locate_file(relative))
            if path.is_file():
                archive.write(path, str(relative))
    return wheel
