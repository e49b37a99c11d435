"""Reading execution log files: bounded pieces, nothing lost or altered, whatever the file's size."""

from __future__ import annotations

import asyncio
from pathlib import Path

from bacalhau.compute.logs import CHUNK_BYTES, LogFileReader, stream_log_files


async def _read_all(stdout: Path, stderr: Path) -> list[tuple[int, str]]:
    finished = asyncio.Event()
    finished.set()
    stream = stream_log_files(stdout_path=stdout, stderr_path=stderr, follow=False, tail=False, finished=finished)
    return [(item.type, item.line) async for item in stream]


async def test_a_big_file_comes_in_pieces_of_at_most_a_chunk_with_every_byte(tmp_path: Path) -> None:
    lines = b"".join(b"%015d%s\n" % (i, b"." * 48) for i in range(20_000))
    long_line = b"x" * (3 * CHUNK_BYTES + 5)
    data = lines + long_line + "é".encode() * CHUNK_BYTES + b"no newline at the end"
    (tmp_path / "stdout").write_bytes(data)
    (tmp_path / "stderr").write_bytes(b"oops\n")

    items = await _read_all(tmp_path / "stdout", tmp_path / "stderr")

    assert all(len(line.encode()) <= CHUNK_BYTES for _, line in items)
    assert "".join(line for kind, line in items if kind == 1).encode() == data  # no U+FFFD at piece boundaries
    assert [line for kind, line in items if kind == 2] == ["oops\n"]


def test_an_unfinished_line_waits_for_its_newline_until_the_end(tmp_path: Path) -> None:
    path = tmp_path / "stdout"
    path.write_bytes(b"done\npart")
    reader = LogFileReader(path, 1)
    try:
        first = reader.next_item(final=False)
        assert first is not None and first.line == "done\n"
        assert reader.next_item(final=False) is None
        with path.open("ab") as out:
            out.write(b"ial\nrest")
        more = reader.next_item(final=False)
        assert more is not None and more.line == "partial\n"
        last = reader.next_item(final=True)
        assert last is not None and last.line == "rest"
        assert reader.next_item(final=True) is None
    finally:
        reader.close()
