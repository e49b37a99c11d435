"""This build's version, in Bacalhau's BuildVersionInfo shape."""

from __future__ import annotations

import platform
import sys

from bacalhau import __version__
from bacalhau.models.node import BuildVersionInfo

_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "arm64": "arm64", "armv7l": "arm"}


def build_version() -> BuildVersionInfo:
    major, minor, *_ = __version__.split(".")
    return BuildVersionInfo(
        Major=major,
        Minor=minor,
        GitVersion=f"v{__version__}",
        GitCommit="",
        BuildDate="",
        GOOS=sys.platform if sys.platform != "linux2" else "linux",
        GOARCH=_ARCH.get(platform.machine(), platform.machine()),
    )
