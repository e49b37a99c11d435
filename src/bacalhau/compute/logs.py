"""Streaming an execution's stdout/stderr files as ExecutionLog items, optionally following them.

Memory stays bounded whatever the size of the log: a file is read `CHUNK_BYTES` at a time, and each read
becomes at most one item, yielded before the next read. Nothing reads ahead: the consumer's pace (the
NATS log stream, itself paced by the websocket client) is the pace of the disk reads.

An item is a run of complete lines of at most `CHUNK_BYTES` (Bacalhau's items are whatever the task
wrote in one go, not single lines; the CLI prints them raw, so the output is the same), or a
`CHUNK_BYTES` piece of a longer line. Lines keep their trailing newline. While following, an unfinished
line is held back until its newline arrives or the execution has ended. A multi-byte UTF-8 character
cut at a piece boundary is decoded whole with the next piece.
"""

from __future__ import annotations

import asyncio
import codecs
from collections.abc import AsyncIterator
from pathlib import Path
from typing import BinaryIO

from bacalhau.models.execution import ExecutionLog

LOG_TYPE_STDOUT = 1
LOG_TYPE_STDERR = 2
# One disk read, one item, one NATS frame, one websocket frame. 64 KiB keeps a frame well under NATS's
# 1 MiB default max payload even after JSON escaping and base64, and the per-frame cost negligible.
CHUNK_BYTES = 64 * 1024
# How often a follower looks for new output while the execution runs (file growth has no event).
POLL_INTERVAL_S = 0.1


class LogFileReader:
    """Reads a file that may not exist yet and may still be growing, one bounded piece at a time."""

    def __init__(self, path: Path, log_type: int, *, chunk_bytes: int = CHUNK_BYTES) -> None:
        self.path = path
        self.log_type = log_type
        self._chunk_bytes = chunk_bytes
        self._file: BinaryIO | None = None
        self._pending = b""  # an unfinished line (shorter than a chunk) read before its newline
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._skip_to_end = False

    def start_at_end(self) -> None:
        """Ignore what is already written (tail): only output written from now on is read."""
        self._skip_to_end = True

    def next_item(self, *, final: bool) -> ExecutionLog | None:
        """The next piece (at most `chunk_bytes`), or None when nothing complete is available now.

        With `final` (the file no longer grows), an unfinished last line is returned too. Reads at most
        one chunk from disk per call.
        """
        data = self._pending
        at_end = True
        handle = self._open()
        if handle is not None and len(data) < self._chunk_bytes:
            wanted = self._chunk_bytes - len(data)
            read = handle.read(wanted)
            data += read
            at_end = len(read) < wanted
        if not data:
            # A truncated UTF-8 sequence at the very end still shows, as U+FFFD.
            rest = self._decoder.decode(b"", final=True) if final and at_end else ""
            return ExecutionLog(type=self.log_type, line=rest) if rest else None
        if final and at_end:
            cut = len(data)
        else:
            cut = data.rfind(b"\n") + 1
            if cut == 0 and len(data) >= self._chunk_bytes:
                cut = len(data)  # a line longer than a chunk: sent in pieces
        self._pending = data[cut:]
        if cut == 0:
            return None
        text = self._decoder.decode(data[:cut], final=final and at_end)
        return ExecutionLog(type=self.log_type, line=text) if text else None

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


async def stream_log_files(
    *, stdout_path: Path, stderr_path: Path, follow: bool, tail: bool, finished: asyncio.Event
) -> AsyncIterator[ExecutionLog]:
    """Yield stdout then stderr pieces; with `follow`, keep going until `finished` is set and the files are drained."""
    readers = [LogFileReader(stdout_path, LOG_TYPE_STDOUT), LogFileReader(stderr_path, LOG_TYPE_STDERR)]
    if tail:
        for reader in readers:
            reader.start_at_end()
    try:
        while True:
            # Decide before reading: output written before the end is then always drained below.
            done = not follow or finished.is_set()
            for reader in readers:
                while (item := reader.next_item(final=done)) is not None:
                    yield item
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
