"""A node's name and installation, kept in its data directory (`system_metadata.yaml`, as Bacalhau's)."""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from bacalhau.models.errors import ConfigurationError

METADATA_FILE = "system_metadata.yaml"


@dataclass(frozen=True)
class Identity:
    """Who a running node is: its name, this run (a new ID each start) and its installation."""

    node_id: str
    instance_id: str
    installation_id: str


def load_identity(data_dir: Path, *, name: str | None, name_provider: str) -> Identity:
    """The node's persisted name (system_metadata.yaml); created on first start."""
    path = data_dir / METADATA_FILE
    data: dict[str, Any] = {}
    if path.exists():
        loaded = yaml.safe_load(path.read_text()) or {}
        if isinstance(loaded, dict):
            data = loaded
    node_id = name or data.get("NodeName") or _generate_name(name_provider)
    installation = data.get("InstallationID") or str(uuid.uuid4())
    data.update({"NodeName": node_id, "InstallationID": installation, "RepoVersion": 4})
    tmp = path.with_suffix(".tmp")
    tmp.write_text(yaml.safe_dump(data))
    os.replace(tmp, path)
    return Identity(node_id=node_id, instance_id=str(uuid.uuid4()), installation_id=installation)


def _generate_name(provider: str) -> str:
    if provider == "hostname":
        return os.uname().nodename
    if provider == "uuid":
        return str(uuid.uuid4())
    if provider == "puuid":
        return f"n-{uuid.uuid4()}"
    raise ConfigurationError(f"unknown NameProvider {provider!r}; valid: puuid, uuid, hostname")
