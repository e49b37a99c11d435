"""The Publisher protocol: making an execution's results folder available to the user; and
PinningPublisher, for a publisher that keeps what it published on this node until it is released."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

from bacalhau.models.job import SpecConfig


class Publisher(Protocol):
    def is_installed(self) -> bool:
        """True when this node can publish with this publisher."""
        ...

    def validate(self, spec: SpecConfig) -> None:
        """Raise ValidationFailed if the publisher params are unusable."""
        ...

    async def publish(
        self, spec: SpecConfig, execution_id: str, job_id: str, results_dir: Path, *, node_id: str = ""
    ) -> SpecConfig:
        """Publish `results_dir` (stdout, stderr, exitCode and one folder per result path).

        Returns where the results now are, as a SpecConfig (e.g. `{Type: local, Params: {URL: ...}}`),
        which becomes the execution's PublishedResult. Raises PublishError. Idempotent per execution.
        """
        ...


@dataclass(frozen=True)
class PinRelease:
    """What `PinningPublisher.release` did: pins removed, bytes freed, and the executions whose pins it
    could not let go of now (their records must stay, so that a later sweep tries again)."""

    unpinned: int = 0
    freed_bytes: int = 0
    pending: frozenset[str] = frozenset()


@runtime_checkable
class PinningPublisher(Protocol):
    """A publisher whose published results stay on this node's storage (IPFS pins) until released:
    results retention releases them once their executions expire."""

    async def release(
        self, published: Mapping[str, SpecConfig], *, in_use: Callable[[set[str]], set[str]]
    ) -> PinRelease:
        """Let go of what this node published for the expired executions in `published` (execution ID ->
        its PublishedResult), except what is still in use. `in_use(refs)` answers, for the references
        (CIDs) given, which ones an execution still kept also published. Idempotent; never raises for a
        failure to reach the storage (those executions come back in `pending`).
        """
        ...
