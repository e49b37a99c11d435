"""The Publisher protocol: making an execution's results folder available to the user."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

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
