"""Copying a container's output into the execution's stdout/stderr files while it runs.

The attach stream is opened before the container starts (as `docker run` does), so no early output
is lost, and is read by a thread of its own: the engine delivers output as it is written, and each
chunk is flushed at once so `job logs -f` can follow the files live.

A container taken back after a restart is read through the engine's log API instead (`follow_logs`):
from its first line, one pump per stream, as that API does not say which stream a chunk came from.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import BinaryIO

import docker

logger = logging.getLogger(__name__)

# Each stream is capped on disk, as Bacalhau caps stdout/stderr (CONTRACT 2.4); the rest is drained.
MAX_LOG_BYTES = 1024**3

Chunk = tuple[bytes | None, bytes | None]
STDOUT, STDERR = 0, 1


class LogPump:
    """Copies (stdout, stderr) chunks of a demultiplexed attach stream into two files."""

    def __init__(
        self,
        chunks: Iterable[Chunk] | Iterable[bytes],
        *,
        stdout_path: Path,
        stderr_path: Path,
        max_bytes: int = MAX_LOG_BYTES,
        only: int | None = None,
    ) -> None:
        """`only` (STDOUT or STDERR): the stream yields plain bytes of that one stream (the log API)."""
        self._chunks = chunks
        self._only = only
        self._paths = (stdout_path, stderr_path)
        self._max_bytes = max_bytes
        self._written = [0, 0]
        self._closed = False
        self._close_lock = threading.Lock()
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._pump, name=f"docker-logs-{stdout_path.parent.name}", daemon=True)

    def start(self) -> None:
        """Start copying in the background."""
        self._thread.start()

    def join(self, timeout_s: float) -> bool:
        """Wait until the stream has ended (the container exited); False if it is still open."""
        self._thread.join(timeout_s)
        return not self._thread.is_alive()

    def close(self) -> None:
        """Close the stream (ends the copy if the engine left it open). Idempotent, thread-safe."""
        with self._close_lock:
            if self._closed:
                return
            self._closed = True
        close = getattr(self._chunks, "close", None)  # the SDK's CancellableStream: shuts its socket
        if close is not None:
            with contextlib.suppress(OSError):
                close()
        # CancellableStream.close() does nothing once the stream has reached its end, and the socket's
        # file descriptor stays open until the HTTP response is closed too (else: a ResourceWarning and
        # a descriptor per execution until garbage collection). The SDK offers no public handle for it.
        response = getattr(self._chunks, "_response", None)
        if response is not None:
            with contextlib.suppress(OSError):
                response.close()

    def _pump(self) -> None:
        try:
            with self._paths[0].open("ab") as out, self._paths[1].open("ab") as err:
                files = (out, err)
                for chunk in self._chunks:
                    if isinstance(chunk, bytes):
                        if chunk and self._only is not None:
                            self._write(files[self._only], self._only, chunk)
                        continue
                    for index, data in enumerate(chunk):
                        if data:
                            self._write(files[index], index, data)
        except BaseException as exc:  # reported by the executor after the run; never lost in this thread
            self.error = exc
            logger.debug("log stream of %s ended with an error", self._paths[0].parent, exc_info=True)
        finally:
            self.close()  # release the engine connection now rather than at garbage collection

    def _write(self, file: BinaryIO, index: int, data: bytes) -> None:
        room = self._max_bytes - self._written[index]
        if room <= 0:
            return
        data = data[:room]
        file.write(data)
        file.flush()
        self._written[index] += len(data)


def follow_logs(client: docker.DockerClient, container_id: str, *, stdout_path: Path, stderr_path: Path) -> list[LogPump]:
    """Pumps rewriting both files with the container's whole output so far, then following it to its
    exit (a container that exited: to the end of its logs). Started; the caller joins and closes them.

    Raises the SDK's errors when the engine cannot give the logs (e.g. a logging driver it cannot read
    back); the files are then left as they were.
    """
    streams = []
    try:
        for index in (STDOUT, STDERR):
            streams.append(
                client.api.logs(
                    container_id, stdout=index == STDOUT, stderr=index == STDERR, stream=True, follow=True
                )
            )
    except BaseException:
        for stream in streams:
            with contextlib.suppress(OSError):
                stream.close()
        raise
    # Rewritten, not appended to: what the earlier process saved is a prefix of what comes now.
    stdout_path.write_bytes(b"")
    stderr_path.write_bytes(b"")
    pumps = [
        LogPump(stream, stdout_path=stdout_path, stderr_path=stderr_path, only=index)
        for index, stream in zip((STDOUT, STDERR), streams, strict=True)
    ]
    for pump in pumps:
        pump.start()
    return pumps
