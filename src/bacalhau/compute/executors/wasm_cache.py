"""Compiled-module cache for the WASM executor: sha256 of the module bytes -> serialized machine code.

Compiling a module with Cranelift costs tens of milliseconds (more for big modules); deserializing a
`Module.serialize()` artifact into a fresh Engine costs well under a millisecond. Every execution gets
its own Engine (so that an epoch increment interrupts that execution only), so we cache the
serialized artifact rather than the `Module` object, which is tied to the Engine that compiled it.

Two levels: an in-memory LRU bounded by total bytes, and an optional directory of `<sha256>.cwasm`
files that survives restarts. A disk entry carries a checksum of its payload, is written atomically,
and is recompiled and rewritten when it is corrupt or was produced by another wasmtime version or
engine configuration (wasmtime refuses such artifacts, and we treat that like a miss).
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import wasmtime

if TYPE_CHECKING:
    from bacalhau.compute.executors.wasm_engines import CompiledModule

log = logging.getLogger(__name__)

_MAGIC = b"BACALHAU-CWASM-1\n"
_DIGEST_LEN = 64  # hex sha256 of the payload, followed by a newline


@dataclass(frozen=True)
class LoadedModule:
    """A module ready to instantiate in `engine`'s stores, and where it came from."""

    module: wasmtime.Module
    sha256: str
    cache_hit: bool
    # What the run reads of the module (imports, exports), when the engine pool has it already.
    compiled: CompiledModule | None = None


class ModuleCache:
    """Thread-safe cache of compiled modules, shared by all executions of one executor.

    `load` never raises for cache problems (unreadable directory, corrupt entry): the cache is an
    optimisation, so it falls back to compiling. Compile errors propagate as `wasmtime.WasmtimeError`.
    """

    def __init__(self, *, cache_dir: Path | None = None, memory_budget_bytes: int = 256 * 1024 * 1024) -> None:
        self._cache_dir = cache_dir
        self._budget = memory_budget_bytes
        self._lock = threading.Lock()
        self._entries: OrderedDict[str, bytes] = OrderedDict()
        self._size = 0

    def load(self, engine: wasmtime.Engine, wasm: bytes, *, digest: str = "") -> LoadedModule:
        """Return `wasm` compiled for `engine`, from the cache when possible (`digest`: its sha256, if known)."""
        digest = digest or hashlib.sha256(wasm).hexdigest()
        for artifact in (self._from_memory(digest), self._from_disk(digest)):
            if artifact is None:
                continue
            try:
                module = wasmtime.Module.deserialize(engine, artifact)
            except wasmtime.WasmtimeError as exc:
                # Another wasmtime version or engine configuration: recompile and overwrite below.
                log.info("discarding cached module %s: %s", digest, exc)
                self._forget(digest)
                continue
            self._remember(digest, artifact)
            return LoadedModule(module, digest, cache_hit=True)
        # A bytearray keeps wasmtime-py from parsing bytes that do not start with \0 as WAT text
        # (it accepts one at run time; its annotation is narrower).
        module = wasmtime.Module(engine, bytearray(wasm))  # type: ignore[arg-type]
        artifact = bytes(module.serialize())
        self._remember(digest, artifact)
        self._to_disk(digest, artifact)
        return LoadedModule(module, digest, cache_hit=False)

    def _from_memory(self, digest: str) -> bytes | None:
        with self._lock:
            artifact = self._entries.get(digest)
            if artifact is not None:
                self._entries.move_to_end(digest)
            return artifact

    def _remember(self, digest: str, artifact: bytes) -> None:
        if len(artifact) > self._budget:
            return
        with self._lock:
            previous = self._entries.pop(digest, None)
            if previous is not None:
                self._size -= len(previous)
            self._entries[digest] = artifact
            self._size += len(artifact)
            while self._size > self._budget:
                _, evicted = self._entries.popitem(last=False)
                self._size -= len(evicted)

    def _forget(self, digest: str) -> None:
        with self._lock:
            previous = self._entries.pop(digest, None)
            if previous is not None:
                self._size -= len(previous)
        if self._cache_dir is not None:
            try:
                self._path(digest).unlink(missing_ok=True)
            except OSError as exc:
                log.warning("could not remove cached module %s: %s", digest, exc)

    def _path(self, digest: str) -> Path:
        assert self._cache_dir is not None
        return self._cache_dir / f"{digest}.cwasm"

    def _from_disk(self, digest: str) -> bytes | None:
        if self._cache_dir is None:
            return None
        try:
            raw = self._path(digest).read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            log.warning("could not read cached module %s: %s", digest, exc)
            return None
        header_len = len(_MAGIC) + _DIGEST_LEN + 1
        payload = raw[header_len:]
        expected = raw[len(_MAGIC) : len(_MAGIC) + _DIGEST_LEN].decode("ascii", "replace")
        if not raw.startswith(_MAGIC) or hashlib.sha256(payload).hexdigest() != expected:
            # Never hand damaged machine code to wasmtime: its deserializer trusts the bytes it accepts.
            log.warning("cached module %s is corrupt; recompiling", digest)
            self._forget(digest)
            return None
        return payload

    def _to_disk(self, digest: str, artifact: bytes) -> None:
        if self._cache_dir is None:
            return
        header = _MAGIC + hashlib.sha256(artifact).hexdigest().encode("ascii") + b"\n"
        try:
            self._cache_dir.mkdir(parents=True, exist_ok=True)
            # Write then rename, so a concurrent reader or a crash never sees a half-written entry.
            fd, tmp = tempfile.mkstemp(dir=self._cache_dir, prefix=f".{digest}-", suffix=".tmp")
            try:
                with os.fdopen(fd, "wb") as handle:
                    handle.write(header + artifact)
                os.replace(tmp, self._path(digest))
            finally:
                Path(tmp).unlink(missing_ok=True)
        except OSError as exc:
            log.warning("could not write cached module %s to %s: %s", digest, self._cache_dir, exc)
