"""Headers every request carries, so a server can tell which client (and version) is talking."""

from __future__ import annotations

import platform

from bacalhau import __version__


def default_headers() -> dict[str, str]:
    """Bacalhau's client identification headers (CONTRACT.md section 3.0) plus JSON content types."""
    return {
        "User-Agent": f"bacalhau-py/{__version__}",
        "Accept": "application/json",
        "X-Bacalhau-Git-Version": f"v{__version__}",
        "X-Bacalhau-Build-OS": platform.system().lower(),
        "X-Bacalhau-Arch": {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine().lower(), platform.machine()),
        "X-Bacalhau-App-ID": "bacalhau-py",
    }
