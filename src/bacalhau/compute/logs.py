"""Streaming an execution's stdout/stderr files as ExecutionLog lines, optionally following them.

Lines keep their trailing newline (the CLI prints them raw, as Bacalhau's does). While following, a
line without its newline yet is held back until it is complete or the execution has ended; one that
grows past `MAX_LINE_BYTES` is sent in pieces so a task printing no newlines cannot exhaust memory.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import BinaryIO

from bacalhau.models.execution import ExecutionLog

LOG_TYPE_STDOUT = 1
LOG_TYPE_STDERR = 2
MAX_LINE_BYTES = 64 * 1024
_CHUNK_BYTES = 64 * 1024
# How often a follower looks for new output while the execution runs (file growth has no event).
POLL_INTERVAL_S = 0.1


class LogFileReader:
    """Reads complete lines from a file that may not exist yet and may still be growing."""

    def __init__(self, path: Path, log_type: int) -> None:
        self.path = path
        self.log_type = log_type
        self._file: BinaryIO | None = None
        self._pending = b""
        self._skip_to_end = False

    def start_at_end(self) -> None:
        """Ignore what is already written (tail): only lines written from now on are read."""
        self._skip_to_end = True

    def read_lines(self, *, final: bool) -> list[ExecutionLog]:
        """The lines written since the last call; with `final`, also the last unterminated one."""
        out: list[ExecutionLog] = []
        handle = self._open()
        if handle is not None:
            while chunk := handle.read(_CHUNK_BYTES):
                self._pending += chunk
                self._split(out)
        if final and self._pending:
            out.append(self._log(self._pending))
            self._pending = b""
        return out

    def close(self) -> None:
        """Release the file handle. Idempotent."""
        if self._file is not None:
            self._file.close()
            self._file = None

    def _open(self) -> BinaryIO | None:
        if self._file is None:
            try:
                self._file = self.path.open("rb")
            except FileNotFoundError:
                return None
            if self._skip_to_end:
                self._file.seek(0, 2)
        return self._file

    def _split(self, out: list[ExecutionLog]) -> None:
        while True:
            newline = self._pending.find(b"\n")
            if newline < 0:
                if len(self._pending) >= MAX_LINE_BYTES:
                    out.append(self._log(self._pending[:MAX_LINE_BYTES]))
                    self._pending = self._pending[MAX_LINE_BYTES:]
                    continue
                return
            out.append(self._log(self._pending[: newline + 1]))
            self._pending = self._pending[newline + 1 :]

    def _log(self, data: bytes) -> ExecutionLog:
        return ExecutionLog(type=self.log_type, line=data.decode("utf-8", errors="replace"))


async def stream_log_files(
    *, stdout_path: Path, stderr_path: Path, follow: bool, tail: bool, finished: asyncio.Event
) -> AsyncIterator[ExecutionLog]:
    """Yield stdout then stderr lines; with `follow`, keep going until `finished` is set and the files are drained."""
    readers = [LogFileReader(stdout_path, LOG_TYPE_STDOUT), LogFileReader(stderr_path, LOG_TYPE_STDERR)]
    if tail:
        for reader in readers:
            reader.start_at_end()
    try:
        while True:
            # Decide before reading: output written before the end is then always drained below.
            done = not follow or finished.is_set()
            for reader in readers:
                for line in reader.read_lines(final=done):
                    yield line
            if done:
                return
            try:
                async with asyncio.timeout(POLL_INTERVAL_S):
                    await finished.wait()
            except TimeoutError:
                pass  # no end yet: look for new output
    finally:
        for reader in readers:
            reader.close()
