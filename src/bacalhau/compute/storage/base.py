"""The StorageProvider protocol: staging one input source onto the compute node's disk."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from bacalhau.models.job import InputSource


@dataclass(frozen=True)
class PreparedInput:
    """A staged input. `owned` is True when the provider made a copy that cleanup must delete; `shared`
    when it is a read-only copy in a folder of the node's own, shared between executions (cleanup lets
    go of it)."""

    source: InputSource
    host_path: Path
    read_only: bool
    owned: bool
    shared: bool = False
    # For a shared input, this staging's hold on the copy: let go of once, however often cleanup runs.
    lease: object = field(default=None, compare=False)


def input_name(source: InputSource) -> str:
    """How an input is named in error messages: its alias if it has one, else its target."""
    return source.alias or source.target or source.source.type


class StorageProvider(Protocol):
    """An input source type (inline, local, urlDownload, s3, ipfs): validates, stages and cleans up inputs."""

    def is_installed(self) -> bool:
        """True when this node can stage inputs of this type."""
        ...

    def validate(self, source: InputSource) -> None:
        """Raise StorageError/ValidationFailed if the node will not accept this source (e.g. not allow-listed)."""
        ...

    async def prepare(self, source: InputSource, work_dir: Path) -> PreparedInput:
        """Stage the input under `work_dir` (or reference it in place) and return where it is.

        Raises StorageError naming the input's alias/target and the cause; leaves no partial files.
        """
        ...

    async def cleanup(self, prepared: PreparedInput) -> None:
        """Remove what `prepare` created (never a user's own folder). Idempotent."""
        ...

    async def has_locally(self, source: InputSource) -> bool:
        """True when the input is on this node already, so staging it downloads nothing (Bacalhau's
        HasStorageLocally; JobAdmissionControl.Locality=local takes only such jobs). Never downloads
        and never raises for an input it cannot tell about: False."""
        ...
