"""This build's version, in Bacalhau's BuildVersionInfo shape."""

from __future__ import annotations

import datetime
import functools
import os
import platform
import sys

from bacalhau import __version__
from bacalhau.models.node import BuildVersionInfo

_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "arm64": "arm64", "armv7l": "arm"}


@functools.cache
def _build_date() -> str:
    """When this package's files were written (installed or built), as RFC3339. Read once: a node
    builds its node info after every change of its queue."""
    stamp = os.path.getmtime(os.path.join(os.path.dirname(__file__), "__init__.py"))
    return datetime.datetime.fromtimestamp(stamp, tz=datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def build_version() -> BuildVersionInfo:
    major, minor, *_ = __version__.split(".")
    return BuildVersionInfo(
        Major=major,
        Minor=minor,
        GitVersion=f"v{__version__}",
        GitCommit="",
        BuildDate=_build_date(),
        GOOS=sys.platform if sys.platform != "linux2" else "linux",
        GOARCH=_ARCH.get(platform.machine(), platform.machine()),
    )
