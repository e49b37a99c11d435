"""The `noop` publisher: results stay on the compute node; nothing is uploaded.

It is also what an empty publisher (`Publisher: {}`) means.
"""

from __future__ import annotations

from pathlib import Path

from bacalhau.models.constants import PUBLISHER_NOOP
from bacalhau.models.job import SpecConfig


class NoopPublisher:
    """Publishes nothing and reports `{Type: noop, Params: {}}`."""

    def is_installed(self) -> bool:
        """Always available."""
        return True

    def validate(self, spec: SpecConfig) -> None:
        """Any params are accepted and ignored."""

    async def publish(
        self, spec: SpecConfig, execution_id: str, job_id: str, results_dir: Path, *, node_id: str = ""
    ) -> SpecConfig:
        """Return the noop result without touching `results_dir`."""
        return SpecConfig(type=PUBLISHER_NOOP, params={})
