"""`bacalhau docker ...`: run container images as jobs."""

from __future__ import annotations

from bacalhau.cli.command import BacalhauGroup

docker = BacalhauGroup(
    name="docker",
    help="Run docker jobs.",
    lazy={"run": ("bacalhau.cli.docker.run:run", "Run a docker image as a job.")},
)
