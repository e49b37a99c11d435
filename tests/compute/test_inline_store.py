"""Inline inputs staged once per content and shared read-only (compute/storage/inline_store.py), through
InlineStorage as the runner calls it and on the store's own bounds, against real files."""

from __future__ import annotations

import asyncio
import base64
import stat
from pathlib import Path

import pytest

from bacalhau.compute.storage.inline import DECODE_ON_LOOP_CHARS, InlineStorage
from bacalhau.compute.storage.inline_store import InlineStore, Writer, inline_key
from bacalhau.models.errors import StorageError
from bacalhau.models.job import InputSource, SpecConfig


def inline(url: str, target: str = "/app/main.wasm") -> InputSource:
    return InputSource(Source=SpecConfig(Type="inline", Params={"URL": url}), Target=target)


def write_file(folder: Path, content: bytes) -> Path:
    folder.mkdir()
    (folder / "f").write_bytes(content)
    return folder / "f"


def data_url(content: bytes) -> str:
    return "data:application/wasm;base64," + base64.b64encode(content).decode()


@pytest.fixture
def store(tmp_path: Path) -> InlineStore:
    return InlineStore(tmp_path / "inline")


async def test_the_same_content_is_staged_once_and_shared_read_only(tmp_path: Path, store: InlineStore) -> None:
    storage = InlineStorage(store=store)
    url = data_url(b"\0asm module bytes")

    first = await storage.prepare(inline(url), tmp_path / "work-1")
    second = await storage.prepare(inline(url), tmp_path / "work-2")

    assert first.host_path == second.host_path
    assert first.host_path.name == "main.wasm" and first.host_path.read_bytes() == b"\0asm module bytes"
    assert first.shared and not first.owned and first.read_only
    # Nothing per execution: no work dir, and the file is read-only for everyone (no task may change it).
    assert not (tmp_path / "work-1").exists() and not (tmp_path / "work-2").exists()
    assert stat.S_IMODE(first.host_path.stat().st_mode) == 0o444
    # Alone in its folder, so the WASM executor can preopen that folder as it is (no view, no link).
    assert [p.name for p in first.host_path.parent.iterdir()] == ["main.wasm"]

    await storage.cleanup(first)
    await storage.cleanup(second)
    assert second.host_path.exists(), "kept for the next execution"
    assert store.stats() == (1, len(b"\0asm module bytes"))


async def test_other_content_or_another_name_gets_its_own_entry(tmp_path: Path, store: InlineStore) -> None:
    storage = InlineStorage(store=store)

    a = await storage.prepare(inline(data_url(b"a")), tmp_path / "w")
    b = await storage.prepare(inline(data_url(b"b")), tmp_path / "w")
    a_renamed = await storage.prepare(inline(data_url(b"a"), target="/app/other.wasm"), tmp_path / "w")

    assert len({a.host_path, b.host_path, a_renamed.host_path}) == 3
    assert (a.host_path.read_bytes(), b.host_path.read_bytes()) == (b"a", b"b")
    assert a_renamed.host_path.name == "other.wasm"


async def test_long_urls_are_shared_too_and_decoded_off_the_loop(tmp_path: Path, store: InlineStore) -> None:
    content = bytes(range(256)) * (DECODE_ON_LOOP_CHARS // 256 + 1)
    storage = InlineStorage(store=store)

    first, second = await asyncio.gather(
        storage.prepare(inline(data_url(content)), tmp_path / "w1"),
        storage.prepare(inline(data_url(content)), tmp_path / "w2"),
    )

    assert first.host_path == second.host_path and first.host_path.read_bytes() == content
    assert store.stats() == (1, len(content))


async def test_archives_and_content_over_the_entry_bound_stay_private(tmp_path: Path) -> None:
    storage = InlineStorage(store=InlineStore(tmp_path / "inline", max_entry_bytes=64))

    big = await storage.prepare(inline(data_url(b"x" * 100)), tmp_path / "w")
    archive = await storage.prepare(inline("data:application/gzip;base64,H4sIANEBF2sC/+3NsQmEQBQE0F+KFRzrIWs9ZprerWD5rkZiriC+l8wwyQyfspS4Vqpy1+1ZnbP6Hvq2577N0aS4wfwvw69exjuNUwAAAAAAAAAAAPBAK+WlLjgAKAAA",
                                           target="/inputs"), tmp_path / "w")

    assert big.owned and not big.shared and big.host_path.parent.parent == tmp_path / "w"
    assert archive.owned and not archive.shared and (archive.host_path / "a.txt").read_bytes() == b"hi"
    await storage.cleanup(big)
    assert not big.host_path.exists()


async def test_a_bad_url_fails_with_its_message_and_leaves_no_entry(tmp_path: Path, store: InlineStore) -> None:
    storage = InlineStorage(store=store)

    with pytest.raises(StorageError, match="invalid data URL"):
        await storage.prepare(inline("data:;base64,@@@@"), tmp_path / "w")

    assert store.stats() == (0, 0)
    assert list(store.root.iterdir()) == []


async def test_entries_in_use_are_never_evicted_and_the_least_recent_idle_one_goes_first(store: InlineStore) -> None:
    store.max_entries = 2

    def writer_of(content: bytes) -> Writer:
        async def write(folder: Path) -> Path:
            return write_file(folder, content)
        return write

    paths = [await store.acquire(inline_key(str(i), "f"), 1, writer_of(b"%d" % i)) for i in range(3)]
    assert all(p is not None and p.exists() for p in paths)  # three in use: over the bound, none evicted

    assert paths[1] is not None and paths[0] is not None
    store.release(paths[1])  # idle now, and the bound is exceeded: it goes
    assert not paths[1].exists() and paths[0].exists()
    store.release(paths[0])
    assert store.stats()[0] == 2 and paths[0].exists()  # back within the bound: kept for reuse


async def test_a_failed_write_is_tried_again_by_the_next_caller(store: InlineStore) -> None:
    calls = []

    async def flaky(folder: Path) -> Path:
        calls.append(folder)
        if len(calls) == 1:
            write_file(folder, b"partial")
            await asyncio.sleep(0.01)
            raise OSError("disk full")
        return write_file(folder, b"ok")

    first, second = await asyncio.gather(
        store.acquire("k", 2, flaky), store.acquire("k", 2, flaky), return_exceptions=True
    )

    assert isinstance(first, OSError)
    assert isinstance(second, Path) and second.read_bytes() == b"ok"
    assert len(calls) == 2


async def test_what_an_earlier_process_left_is_removed_at_the_first_use(tmp_path: Path) -> None:
    leftover = tmp_path / "inline" / "deadbeef"
    leftover.mkdir(parents=True)
    (leftover / "main.wasm").write_bytes(b"half written")
    store = InlineStore(tmp_path / "inline")

    path = await InlineStorage(store=store).prepare(inline(data_url(b"new")), tmp_path / "w")

    assert not leftover.exists()
    assert path.host_path.read_bytes() == b"new"


async def test_a_staging_cancelled_while_its_thread_writes_leaves_the_next_one_working(
    tmp_path: Path, store: InlineStore
) -> None:
    content = b"\x01" * (8 * 1024 * 1024)  # long enough to be decoded in a thread for a while
    storage = InlineStorage(store=store)
    staging = asyncio.create_task(storage.prepare(inline(data_url(content)), tmp_path / "w1"))
    await asyncio.sleep(0.02)
    assert not staging.done(), "the write was over before it could be cancelled"

    staging.cancel()
    with pytest.raises(asyncio.CancelledError):
        await staging

    again = await storage.prepare(inline(data_url(content)), tmp_path / "w2")
    assert again.host_path.read_bytes() == content
    assert stat.S_IMODE(again.host_path.stat().st_mode) == 0o444
    assert store.stats() == (1, len(content))


async def test_cleanup_twice_lets_go_once_so_another_executions_copy_stays(tmp_path: Path) -> None:
    store = InlineStore(tmp_path / "inline", max_entries=0)  # an idle entry is evicted at once
    storage = InlineStorage(store=store)
    url = data_url(b"shared")
    mine = await storage.prepare(inline(url), tmp_path / "w1")
    theirs = await storage.prepare(inline(url), tmp_path / "w2")

    await storage.cleanup(mine)
    await storage.cleanup(mine)

    assert theirs.host_path.read_bytes() == b"shared", "still in use by the other execution"
    await storage.cleanup(theirs)
    assert not theirs.host_path.exists()
