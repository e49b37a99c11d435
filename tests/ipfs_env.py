"""What IPFS tests share: the libkubo prerequisite, sample trees, tree snapshots, CIDs nobody has, and
IPFS nodes run in child processes (a user's own node, a Kubo daemon) for the end-to-end scenarios.

Importable by bare name (tests/ is on pytest's pythonpath) from tests/ipfs and tests/conformance alike.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bacalhau.ipfs.embedded import EmbeddedIpfsNode
from bacalhau.ipfs.libkubo import load_libkubo, locate_libkubo
from serve_node import missing_prerequisite

# `await start_node("a", peers=[...])` (tests/ipfs/conftest.py)
NodeFactory = Callable[..., Awaitable[EmbeddedIpfsNode]]

# Kubo's `ipfs add` of these 12 bytes (CIDv0, default chunker): the CID the whole IPFS world knows.
HELLO_BYTES = b"hello world\n"
HELLO_CID = "QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o"
# Short: a fetch of a CID no peer has must fail in this long, and the suite must stay fast.
UNREACHABLE_TIMEOUT_S = 0.5


def require_libkubo() -> Path:
    """kubo-python's shared library; skip locally / fail under CI=true when it is missing."""
    path = locate_libkubo()
    if path is None:
        missing_prerequisite("kubo-python's libkubo is not installed (pip install kubo-python; Linux x86_64 only)")
    return path


def make_repo_template(folder: Path) -> Path:
    """An initialised Kubo repo to copy (`copy_repo`): CreateRepo's RSA key costs ~0.3 s per repo.

    Copies share one peer identity, so use them only where a test runs one node at a time.
    """
    if load_libkubo(require_libkubo()).create_repo(folder) < 0:
        raise RuntimeError(f"CreateRepo failed in {folder}")
    return folder


def copy_repo(template: Path, dest: Path) -> Path:
    """A copy of the repo `template` at `dest`."""
    shutil.copytree(template, dest, symlinks=True)
    return dest


def make_sample_tree(root: Path) -> Path:
    """A nested folder with an empty file, an empty folder, a multi-chunk binary file and a non-ASCII name."""
    (root / "sub" / "deeper").mkdir(parents=True)
    (root / "empty-folder").mkdir()
    (root / "readme.txt").write_text("top level\n")
    (root / "empty.txt").write_bytes(b"")
    (root / ".hidden").write_text("hidden files are content too\n")
    (root / "ünï cödé + spaces.txt").write_text("escaped names survive\n")
    (root / "sub" / "data.csv").write_text("a,b\n1,2\n")
    # > Kubo's 256 KiB chunk size, so the file is a DAG of several blocks, not one.
    (root / "sub" / "deeper" / "blob.bin").write_bytes(os.urandom(700_000))
    return root


def tree_snapshot(path: Path) -> dict[str, bytes | None]:
    """{relative path: bytes (files) or None (folders)} of everything under `path`, for exact comparison."""
    snapshot: dict[str, bytes | None] = {}
    for item in sorted(path.rglob("*")):
        relative = item.relative_to(path).as_posix()
        snapshot[relative] = None if item.is_dir() else item.read_bytes()
    return snapshot


def unreachable_cid() -> str:
    """A valid CIDv1 (raw, sha2-256) of random bytes: no node anywhere has it."""
    digest = hashlib.sha256(os.urandom(32)).digest()
    raw = bytes([0x01, 0x55, 0x12, 0x20]) + digest
    return "b" + base64.b32encode(raw).decode().lower().rstrip("=")


@contextmanager
def ipfs_child(script: Path, repo: Path, data: Path, *, log_path: Path) -> Iterator[dict[str, Any]]:
    """Run tests/ipfs/<script> (embedded_child.py, rpc_child.py) adding `data` in `repo`; yield the JSON
    facts it prints once ready (CID, addresses or URL). Stopped by closing its stdin, killed if it hangs."""
    with log_path.open("w") as log:
        child = subprocess.Popen(
            [sys.executable, str(script), str(repo), str(data)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, text=True,
        )
    try:
        assert child.stdout is not None
        line = child.stdout.readline()
        assert line, f"{script.name} did not start: {log_path.read_text()}"
        yield json.loads(line)
    finally:
        if child.stdin:
            child.stdin.close()  # the child's clean stop
        try:
            child.wait(timeout=20)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
        if child.stdout:
            child.stdout.close()
