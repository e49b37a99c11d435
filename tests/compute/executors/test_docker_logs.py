"""LogPump: a container's demultiplexed output into two files, capped, with the stream closed after."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from bacalhau.compute.executors.docker_logs import Chunk, LogPump


class Stream:
    """What the Docker SDK's attach(stream=True, demux=True) yields, plus its close()."""

    def __init__(self, chunks: list[Chunk]) -> None:
        self._chunks = chunks
        self.closed = 0

    def __iter__(self) -> Iterator[Chunk]:
        return iter(self._chunks)

    def close(self) -> None:
        self.closed += 1


def pump(tmp_path: Path, chunks: list[Chunk], **kwargs: int) -> tuple[LogPump, Stream]:
    stream = Stream(chunks)
    log_pump = LogPump(stream, stdout_path=tmp_path / "stdout", stderr_path=tmp_path / "stderr", **kwargs)
    log_pump.start()
    assert log_pump.join(10)
    return log_pump, stream


def test_chunks_go_to_their_own_file_in_order(tmp_path: Path) -> None:
    log_pump, stream = pump(tmp_path, [(b"out1\n", None), (None, b"err\n"), (b"out2\n", None)])
    assert (tmp_path / "stdout").read_bytes() == b"out1\nout2\n"
    assert (tmp_path / "stderr").read_bytes() == b"err\n"
    assert log_pump.error is None
    assert stream.closed == 1


def test_each_stream_is_capped_and_the_rest_drained(tmp_path: Path) -> None:
    pump(tmp_path, [(b"abcdef", b"12"), (b"ghi", b"345")], max_bytes=4)
    assert (tmp_path / "stdout").read_bytes() == b"abcd"
    assert (tmp_path / "stderr").read_bytes() == b"1234"


def test_a_file_that_cannot_be_written_is_reported_and_the_stream_closed(tmp_path: Path) -> None:
    stream = Stream([(b"x", None)])
    log_pump = LogPump(stream, stdout_path=tmp_path / "missing" / "stdout", stderr_path=tmp_path / "stderr")
    log_pump.start()
    assert log_pump.join(10)
    assert isinstance(log_pump.error, FileNotFoundError)
    assert stream.closed == 1
    log_pump.close()  # idempotent
    assert stream.closed == 1
