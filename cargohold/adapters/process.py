"""Child processes that die with their worker."""

from __future__ import annotations

import shutil

_SETPRIV = shutil.which("setpriv")


def dies_with_worker(command: list[str]) -> list[str]:
    """The command run so that the kernel kills it when the worker thread that started it
    dies (PR_SET_PDEATHSIG through setpriv, applied after any user switch in `command`'s own
    setpriv). Without setpriv the command runs as it is."""
    if _SETPRIV is None:
        return command
    return [_SETPRIV, "--pdeathsig", "KILL", "--", *command]
