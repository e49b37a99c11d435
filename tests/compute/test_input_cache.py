"""The input cache on its own: real folders and a real SQLite index, a clock the test moves."""

from __future__ import annotations

import asyncio
import os
import stat
from pathlib import Path

import pytest
from input_cache_probe import ObservedCache

from bacalhau.compute.storage.cache_index import CacheEntry, CacheIndex
from bacalhau.compute.storage.input_cache import InputCache


class Clock:
    """Wall-clock seconds that move only when a test says so."""

    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float = 1.0) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


def cache_at(root: Path, clock: Clock, max_bytes: int = 100) -> InputCache:
    return InputCache(root=root, max_bytes=max_bytes, clock=clock)


async def stage(
    cache: InputCache, key: str, dest: Path, data: bytes, *, name: str = "data.bin", validator: str = "v1"
) -> bool:
    """Stage `data` under `key` as a miss would: download into scratch, then store. Returns whether cached."""
    await asyncio.to_thread(dest.mkdir, parents=True)
    async with cache.claim(key, label=key) as claim:
        scratch = await claim.scratch(fallback=dest)
        (scratch / name).write_bytes(data)
        return await claim.store(scratch, dest, validator=validator)


async def stage_hit(cache: InputCache, key: str, dest: Path) -> bool:
    """Stage `key` from the cache if it has an entry; False (nothing staged) if not."""
    await asyncio.to_thread(dest.mkdir, parents=True)
    async with cache.claim(key, label=key) as claim:
        if claim.entry is None:
            return False
        await claim.hit(dest)
        return True


def keys_cached(cache: InputCache, *keys: str) -> set[str]:
    return {key for key in keys if cache.contains(key)}


async def test_a_stored_entry_is_staged_again_as_the_same_read_only_files(tmp_path: Path, clock: Clock) -> None:
    cache = cache_at(tmp_path / "cache", clock)
    assert await stage(cache, "k", tmp_path / "s1", b"payload", name="report.csv")

    assert await stage_hit(cache, "k", tmp_path / "s2")

    for folder in (tmp_path / "s1", tmp_path / "s2"):
        assert [p.name for p in folder.iterdir()] == ["report.csv"]
        assert (folder / "report.csv").read_bytes() == b"payload"
        assert stat.S_IMODE((folder / "report.csv").stat().st_mode) & 0o222 == 0  # nobody may write it
    assert (tmp_path / "s1" / "report.csv").stat().st_ino == (tmp_path / "s2" / "report.csv").stat().st_ino
    assert cache.stats().to_wire() == {
        "Path": str(tmp_path / "cache"),
        "MaxSizeBytes": 100,
        "SizeBytes": 7,
        "Entries": 1,
        "Hits": 1,
        "Misses": 1,
        "HitRate": 0.5,
    }


async def test_least_recently_used_entries_are_evicted_to_stay_within_the_size_bound(
    tmp_path: Path, clock: Clock
) -> None:
    cache = cache_at(tmp_path / "cache", clock, max_bytes=100)
    await stage(cache, "a", tmp_path / "a", b"a" * 40)
    clock.advance()
    await stage(cache, "b", tmp_path / "b", b"b" * 40)
    clock.advance()
    assert await stage_hit(cache, "a", tmp_path / "a-again")  # a is now used more recently than b
    clock.advance()

    assert await stage(cache, "c", tmp_path / "c", b"c" * 40)

    assert keys_cached(cache, "a", "b", "c") == {"a", "c"}
    assert cache.stats().size_bytes == 80
    clock.advance()
    await stage(cache, "d", tmp_path / "d", b"d" * 70)  # needs both a and c gone
    assert keys_cached(cache, "a", "b", "c", "d") == {"d"}
    assert len(os.listdir(tmp_path / "cache" / "entries")) == 1
    # Staged folders keep their files (hard links outlive the entry).
    assert (tmp_path / "b" / "data.bin").read_bytes() == b"b" * 40


async def test_an_input_larger_than_the_cache_is_staged_but_not_cached(tmp_path: Path, clock: Clock) -> None:
    cache = cache_at(tmp_path / "cache", clock, max_bytes=10)

    assert not await stage(cache, "big", tmp_path / "s", b"x" * 11)

    assert (tmp_path / "s" / "data.bin").read_bytes() == b"x" * 11
    assert not cache.contains("big")
    assert cache.stats().entries == 0
    assert os.listdir(tmp_path / "cache" / "scratch") == []


async def test_an_input_without_a_validator_is_staged_but_not_cached(tmp_path: Path, clock: Clock) -> None:
    cache = cache_at(tmp_path / "cache", clock)

    assert not await stage(cache, "k", tmp_path / "s", b"data", validator="")

    assert (tmp_path / "s" / "data.bin").read_bytes() == b"data"
    assert not cache.contains("k")


async def test_an_entry_being_staged_is_never_evicted(tmp_path: Path, clock: Clock) -> None:
    cache = cache_at(tmp_path / "cache", clock, max_bytes=100)
    await stage(cache, "a", tmp_path / "a", b"a" * 60)
    clock.advance()
    (tmp_path / "a-again").mkdir()

    async with cache.claim("a", label="a") as claim:  # a staging of a is under way (e.g. revalidating)
        assert not await stage(cache, "b", tmp_path / "b", b"b" * 60)  # no room without evicting a
        assert claim.entry is not None
        await claim.hit(tmp_path / "a-again")

    assert keys_cached(cache, "a", "b") == {"a"}
    assert (tmp_path / "b" / "data.bin").read_bytes() == b"b" * 60
    assert (tmp_path / "a-again" / "data.bin").read_bytes() == b"a" * 60
    clock.advance()
    assert await stage(cache, "b", tmp_path / "b2", b"b" * 60)  # once a is free, it goes
    assert keys_cached(cache, "a", "b") == {"b"}


async def test_a_changed_source_replaces_its_entry(tmp_path: Path, clock: Clock) -> None:
    cache = cache_at(tmp_path / "cache", clock)
    await stage(cache, "k", tmp_path / "old", b"old", validator="v1")

    await stage(cache, "k", tmp_path / "new", b"new!", validator="v2")

    async with cache.claim("k", label="k") as claim:
        assert claim.entry is not None and claim.entry.validator == "v2"
    assert cache.stats().entries == 1 and cache.stats().size_bytes == 4
    assert len(os.listdir(tmp_path / "cache" / "entries")) == 1
    assert (tmp_path / "old" / "data.bin").read_bytes() == b"old"


async def test_the_index_survives_a_reopen(tmp_path: Path, clock: Clock) -> None:
    first = cache_at(tmp_path / "cache", clock)
    await stage(first, "k", tmp_path / "s1", b"kept", name="kept.txt", validator='etag:"abc"')
    first.close()

    second = cache_at(tmp_path / "cache", clock)

    assert second.contains("k")
    async with second.claim("k", label="k") as claim:
        assert claim.entry is not None and claim.entry.validator == 'etag:"abc"'
        (tmp_path / "s2").mkdir()
        await claim.hit(tmp_path / "s2")
    assert (tmp_path / "s2" / "kept.txt").read_bytes() == b"kept"


async def test_a_download_interrupted_by_a_crash_never_looks_like_an_entry(tmp_path: Path, clock: Clock) -> None:
    root = tmp_path / "cache"
    cache = cache_at(root, clock)
    await stage(cache, "kept", tmp_path / "s", b"kept")
    async with cache.claim("half", label="half") as claim:
        scratch = await claim.scratch(fallback=tmp_path)
        (scratch / "data.bin").write_bytes(b"half of it")
        assert not cache.contains("half")
        # The process dies here: the claim never ends, the scratch folder stays. Leftovers of a crash
        # between the rename and the row, and of an entry whose folder went, are planted beside it.
        (root / "entries" / "orphan").mkdir()
        (root / "entries" / "orphan" / "x").write_bytes(b"x")
        CacheIndex(root / "index.db").put(
            CacheEntry(key="gone", label="gone", validator="v", entry_id="gone", size_bytes=1, sha256="", last_used=0.0)
        )

        reopened = cache_at(root, clock)

        assert keys_cached(reopened, "kept", "half", "gone") == {"kept"}
        assert os.listdir(root / "scratch") == []
        assert len(os.listdir(root / "entries")) == 1
        assert reopened.stats().entries == 1


async def test_stagings_of_one_key_take_turns_and_the_second_finds_the_first_ones_entry(
    tmp_path: Path, clock: Clock
) -> None:
    cache = ObservedCache(root=tmp_path / "cache", max_bytes=100, clock=clock)
    first_inside, let_first_finish = asyncio.Event(), asyncio.Event()
    seen: list[str] = []

    async def first() -> None:
        (tmp_path / "s1").mkdir()
        async with cache.claim("k", label="k") as claim:
            first_inside.set()
            await let_first_finish.wait()
            scratch = await claim.scratch(fallback=tmp_path / "s1")
            (scratch / "data.bin").write_bytes(b"once")
            await claim.store(scratch, tmp_path / "s1", validator="v")
            seen.append("first stored")

    async def second() -> None:
        (tmp_path / "s2").mkdir()
        async with cache.claim("k", label="k") as claim:
            seen.append("second inside")
            assert claim.entry is not None  # it waited: no second download
            await claim.hit(tmp_path / "s2")

    one = asyncio.create_task(first())
    await first_inside.wait()
    two = asyncio.create_task(second())
    await cache.wait_for_claims(2)  # the second staging is queued behind the first
    assert seen == []
    let_first_finish.set()
    await asyncio.gather(one, two)

    assert seen == ["first stored", "second inside"]
    assert (tmp_path / "s2" / "data.bin").read_bytes() == b"once"
    assert (cache.hits, cache.misses) == (1, 1)


async def test_a_cache_that_cannot_be_opened_reports_no_entries_and_zero_statistics(
    tmp_path: Path, clock: Clock
) -> None:
    blocker = tmp_path / "file"
    blocker.write_bytes(b"")
    cache = cache_at(blocker / "cache", clock)  # under a regular file: no folder can be made

    assert not cache.contains("k")
    assert cache.stats().entries == 0
