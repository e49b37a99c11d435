"""The compute child's end of the control pipes (compute_child.ParentLink), over real pipes.

The node it drives is a recorder: what is tested is that every line the parent writes reaches it, in
order, the hello's neighbours included, and that a closed stdin stops it at once."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from bacalhau.compute_child import ParentLink


class RecordingNode:
    """What ParentLink.obey calls on the node, recorded."""

    def __init__(self) -> None:
        self.calls: list[Any] = []

    def relabel(self, labels: dict[str, str]) -> None:
        self.calls.append(("relabel", labels))

    def start_drain(self) -> None:
        self.calls.append("start_drain")

    def stop_now(self) -> None:
        self.calls.append("stop_now")

    def compute_info(self) -> tuple[dict[str, Any], dict[str, Any]]:
        return {"NodeID": "n-1"}, {"ActiveJobs": []}


@pytest.fixture
def stdin_pipe(monkeypatch: pytest.MonkeyPatch) -> Iterator[int]:
    """A pipe as this process's stdin; yields its write end."""
    read_fd, write_fd = os.pipe()
    reader = os.fdopen(read_fd, "rb", 0)
    monkeypatch.setattr(sys, "stdin", reader)
    yield write_fd
    with contextlib.suppress(OSError):  # a test may have closed it (the parent is gone)
        os.close(write_fd)
    reader.close()


@pytest.fixture
def control_out() -> Iterator[tuple[int, Any]]:
    """The child's control pipe to the parent: (the parent's read end, the child's writer)."""
    read_fd, write_fd = os.pipe()
    writer = os.fdopen(write_fd, "wb", 0)
    yield read_fd, writer
    writer.close()
    os.close(read_fd)


def _line(**message: Any) -> bytes:
    return json.dumps(message).encode() + b"\n"


async def test_lines_written_with_the_hello_are_not_lost_and_eof_stops_the_node(
    stdin_pipe: int, control_out: tuple[int, Any]
) -> None:
    out_r, writer = control_out
    parent = ParentLink(writer)
    # The hello and the next lines arrive in one write, as they may when the node is quick.
    os.write(stdin_pipe, _line(hello=1) + _line(op="labels", labels={"zone": "a"}) + _line(op="ask", id=7, what="debug"))
    assert json.loads(parent.read_hello()) == {"hello": 1}

    node = RecordingNode()
    obeying = asyncio.create_task(parent.obey(node))  # type: ignore[arg-type]
    os.write(stdin_pipe, _line(op="drain") + _line(op="drain"))  # a drain asked twice is still a drain
    os.set_blocking(out_r, False)
    answered = b""
    async with asyncio.timeout(5):
        while len(node.calls) < 3 or b"\n" not in answered:
            await asyncio.sleep(0.02)
            with contextlib.suppress(BlockingIOError):
                answered += os.read(out_r, 65536)
    assert node.calls == [("relabel", {"zone": "a"}), "start_drain", "start_drain"]
    assert json.loads(answered.splitlines()[0]) == {"id": 7, "answer": {"ActiveJobs": []}}

    os.close(stdin_pipe)  # the parent is gone
    async with asyncio.timeout(5):
        await obeying
    assert node.calls[-1] == "stop_now"


async def test_a_line_that_is_not_ours_is_ignored(
    stdin_pipe: int, control_out: tuple[int, Any], caplog: pytest.LogCaptureFixture
) -> None:
    parent = ParentLink(control_out[1])
    os.write(stdin_pipe, _line(hello=1) + b"not json\n" + _line(nop=1) + _line(op="ask", id=1, what="node_info"))
    parent.read_hello()
    node = RecordingNode()
    obeying = asyncio.create_task(parent.obey(node))  # type: ignore[arg-type]
    os.close(stdin_pipe)
    async with asyncio.timeout(5):
        await obeying
    assert node.calls == ["stop_now"]
    assert caplog.text.count("not ours") == 2
