"""Results folders made ahead of the executions that take them.

Every execution needs a fresh results folder holding its stdout, stderr and exitCode files: four new
inodes, 0.03-1 ms of kernel time each on a slow disk (this project's 2-core VM), more than a trivial
WASM task runs, and paid on the event loop while the job waits. Here a thread keeps `keep` blank folders
ready under `<DataDir>/compute/results-spare/`; an execution takes one by renaming it to its own results
folder (one rename, ~20 µs), and once half of them are taken the thread makes new ones, several in a row:

    take(dest) ──► a blank ready? ──no──► False (the caller makes its folder itself); wake the thread
                      │yes
                      ▼
                 rename it to dest ──fails──► False; the blank is deleted; unless dest was a leftover
                      │ok                     folder with content, no blank is made or taken any more
                      ▼                       (another disk, no rights: it would fail every time)
                 True; half of them gone? wake the thread ──► it tops the spares up to `keep` again

A blank is an empty folder with empty `stdout`, `stderr` and `exitCode` files: the executors open (and
truncate) the first two as the task starts, and the runner writes the exit code into the third when it
ends. An empty `exitCode` is also what a node killed between creating and writing it leaves, and reads
as no exit code (runner.written_exit_code): a restarted node still tells "ran" from "was running".

The spares are only this process's: the thread deletes whatever an earlier one left before making any.
Each spare is complete before it is listed as ready, so a take never sees a half-made one.
"""

from __future__ import annotations

import collections
import contextlib
import errno
import logging
import os
import shutil
import threading
from pathlib import Path
from typing import Final

from bacalhau.models import constants as c

logger = logging.getLogger(__name__)

DEFAULT_KEEP: Final = 16
_FILES: Final = (c.RESULT_STDOUT, c.RESULT_STDERR, c.RESULT_EXIT_CODE)


class BlankResults:
    """A few blank results folders kept ready (see the module docstring). Thread-safe `take`."""

    def __init__(self, spare_dir: Path, *, keep: int = DEFAULT_KEEP) -> None:
        self.spare_dir = spare_dir
        self.keep = keep
        self._ready: collections.deque[Path] = collections.deque()
        self._wake = threading.Event()
        self._closed = False
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()  # starts the thread once

    def take(self, dest: Path) -> bool:
        """Move a blank folder to `dest` (its parent made if needed); False when none is ready or it cannot
        be moved there, and the caller makes the folder itself. Never raises."""
        if self._closed:
            return False
        self._start()
        try:
            blank = self._ready.popleft()
        except IndexError:
            self._wake.set()
            return False
        try:
            try:
                os.rename(blank, dest)  # onto an empty leftover folder, replaces it; onto a full one, fails
            except FileNotFoundError:  # the first results folder: their parent is not there yet
                dest.parent.mkdir(parents=True, exist_ok=True)
                os.rename(blank, dest)
        except OSError as exc:
            shutil.rmtree(blank, ignore_errors=True)
            if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST):  # another disk, no rights: it never will
                logger.warning("results folders are no longer made ahead: cannot move one to %s: %s", dest, exc)
                self.close()
            self._wake.set()  # rare: its replacement is made at once
            return False
        # Dated now, not when it was made (retention and published archives read these times).
        for path in (dest, *(dest / name for name in _FILES)):
            with contextlib.suppress(OSError):
                os.utime(path)
        self._wake_if_low()
        return True

    def _wake_if_low(self) -> None:
        # Once half the blanks are gone, and after the take's own system calls: the thread makes folders
        # in Python, and while it does it takes the GIL at each system call of the event loop, which then
        # waits to get it back. Woken at every take, it did so in the middle of nearly every job; woken
        # once per keep/2 takes, it makes keep/2 blanks in a row. A lone trivial job: 2-6 % faster
        # (bench/wasm_ab.py, 8 rounds); a backlog drains as fast as before.
        if len(self._ready) <= self.keep // 2:
            self._wake.set()

    def ready(self) -> int:
        """How many blanks are ready now."""
        return len(self._ready)

    def close(self) -> None:
        """Stop the thread (the spares stay; the next process deletes them). It stops within one blank."""
        self._closed = True
        self._wake.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)

    def _start(self) -> None:
        if self._thread is not None or self._closed:
            return
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="blank-results", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        shutil.rmtree(self.spare_dir, ignore_errors=True)  # an earlier process's: not listed here
        made = 0
        failing = False
        while not self._closed:
            self._wake.clear()  # before looking: a take from now on wakes the wait below
            try:
                while len(self._ready) < self.keep and not self._closed:
                    self._ready.append(self._make(made))
                    made += 1
                failing = False
            except OSError as exc:  # a full or read-only disk: executions make their own folders meanwhile
                if not failing:
                    logger.warning("cannot make blank results folders in %s: %s", self.spare_dir, exc)
                failing = True
            self._wake.wait()

    def _make(self, n: int) -> Path:
        folder = self.spare_dir / str(n)
        self.spare_dir.mkdir(parents=True, exist_ok=True)
        try:
            folder.mkdir()
            for name in _FILES:
                os.close(os.open(folder / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666))
        except BaseException:
            with contextlib.suppress(OSError):
                shutil.rmtree(folder)
            raise
        return folder
