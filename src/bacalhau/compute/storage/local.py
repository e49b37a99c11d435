"""The `local` input source (and its deprecated name `localDirectory`): a folder of the compute host.

Params: `SourcePath`, `ReadWrite` (bool, or the string "true"), `CreateAs` (`dir`, `file` or
`noCreate`, case-insensitive; default `noCreate`). The path must be allowed by
`Compute.AllowListedLocalPaths` (see `allowlist.py`). It is bound in place, never copied, and
never cleaned up: it is the user's folder, not ours.
"""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass
from pathlib import Path

from bacalhau.compute.holdings import HeldItem
from bacalhau.compute.storage.allowlist import AllowList
from bacalhau.compute.storage.base import PreparedInput, input_name
from bacalhau.compute.storage.local_holdings import scan_roots
from bacalhau.models.errors import BacalhauError, ConfigurationError, StorageError
from bacalhau.models.job import InputSource

CREATE_DIR = "dir"
CREATE_FILE = "file"
NO_CREATE = "noCreate"
_CREATE_AS = {v.lower(): v for v in (CREATE_DIR, CREATE_FILE, NO_CREATE)}
# How often the allow-listed folders are sized again for the node's data holdings.
RESCAN_S = 60.0
_ALLOW_LIST_HINT = "check Compute.AllowListedLocalPaths on the compute node"


@dataclass(frozen=True)
class LocalParams:
    """The decoded params of a `local` source."""

    source_path: str
    read_write: bool
    create_as: str


def decode_params(source: InputSource) -> LocalParams:
    """Read SourcePath/ReadWrite/CreateAs case-insensitively; raise StorageError if unusable."""
    spec = source.source
    path = spec.param("SourcePath", "")
    if not isinstance(path, str) or not path.strip():
        raise StorageError(f"local input {input_name(source)!r} has no SourcePath")
    if not os.path.isabs(path):
        raise StorageError(f"local input {input_name(source)!r}: SourcePath {path!r} must be an absolute path")
    rw = spec.param("ReadWrite", False)
    read_write = rw is True or (isinstance(rw, str) and rw.strip().lower() == "true")
    create_raw = spec.param("CreateAs", "") or NO_CREATE
    create_as = _CREATE_AS.get(str(create_raw).strip().lower())
    if create_as is None:
        raise StorageError(
            f"local input {input_name(source)!r}: invalid CreateAs {create_raw!r}; must be dir, file or noCreate"
        )
    return LocalParams(source_path=path, read_write=read_write, create_as=create_as)


class LocalStorage:
    """Binds allow-listed host paths into tasks, read-only unless the entry grants `:rw`."""

    def __init__(self, *, allow_listed_paths: list[str]) -> None:
        self._allow_list = AllowList(allow_listed_paths)
        self._scanned: list[HeldItem] = []
        self._scanned_at: float | None = None

    def is_installed(self) -> bool:
        """Always usable; with an empty allow-list every source is simply refused."""
        return True

    def validate(self, source: InputSource) -> None:
        """Raise ConfigurationError if the path is not allow-listed (or not writable when asked to be);
        StorageError if it is missing and may not be created."""
        params = decode_params(source)
        self._check_access(params)
        self._check_exists(source, params)

    async def prepare(self, source: InputSource, work_dir: Path) -> PreparedInput:
        """Check access again (the filesystem may have changed since the bid), create if asked, bind in place."""
        return await asyncio.to_thread(self._prepare, source)

    async def cleanup(self, prepared: PreparedInput) -> None:
        """Nothing to do: the folder belongs to the user and is never deleted."""

    async def has_locally(self, source: InputSource) -> bool:
        """When the path is allow-listed and exists here: it is bound in place, nothing is copied."""
        try:
            params = decode_params(source)
            self._check_access(params)
        except BacalhauError:
            return False
        return await asyncio.to_thread(os.path.exists, params.source_path)

    def kept_kinds(self) -> list[str]:
        """None (HoldsData): a local input is bound in place, staging it adds nothing to the node."""
        return []

    async def held(self) -> list[HeldItem]:
        """The allow-listed folders and their largest children, sized (HoldsData); rescanned at most
        every RESCAN_S seconds, in a thread."""
        now = time.monotonic()
        if self._scanned_at is None or now - self._scanned_at >= RESCAN_S:
            self._scanned_at = now
            self._scanned = await asyncio.to_thread(scan_roots, self._allow_list.roots())
        return self._scanned

    def _prepare(self, source: InputSource) -> PreparedInput:
        params = decode_params(source)
        self._check_access(params)
        real = os.path.realpath(params.source_path)
        if not os.path.exists(real):
            self._check_exists(source, params)
            _create(real, params.create_as)
        return PreparedInput(source=source, host_path=Path(real), read_only=not params.read_write, owned=False)

    def _check_access(self, params: LocalParams) -> None:
        allowed, writable = self._allow_list.lookup(params.source_path)
        if not allowed:
            raise ConfigurationError(
                f"volume {params.source_path} is not allowlisted", component="Storage", hint=_ALLOW_LIST_HINT
            )
        if params.read_write and not writable:
            raise ConfigurationError(
                f"volume {params.source_path} is not granted write access",
                component="Storage",
                hint="add the path with the :rw suffix to Compute.AllowListedLocalPaths on the compute node",
            )

    @staticmethod
    def _check_exists(source: InputSource, params: LocalParams) -> None:
        if os.path.exists(params.source_path):
            return
        if params.read_write and params.create_as != NO_CREATE:
            return
        raise StorageError(
            f"local input {input_name(source)!r}: source path {params.source_path} does not exist",
            hint="create it on the compute node, or set ReadWrite=true with CreateAs=dir or file",
        )


def _create(path: str, create_as: str) -> None:
    try:
        if create_as == CREATE_DIR:
            os.makedirs(path, exist_ok=True)
        else:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "a"):
                pass
    except OSError as exc:
        raise StorageError(f"could not create {path}: {exc}") from exc
