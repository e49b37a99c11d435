"""Bacalhau's devstack run files: `$TMPDIR/bacalhau-devstack.port` (first node's API port) and `.pid`.

Scripts wait for these files to find a running devstack (Bacalhau's benchmark/start_and_run.sh does).
Their presence means a devstack is (likely) running, so a second one refuses to start unless
IGNORE_PID_AND_PORT_FILES is set; they are removed when the devstack stops.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path

from bacalhau.models.errors import BacalhauError, ErrorCode

PORT_FILE_NAME = "bacalhau-devstack.port"
PID_FILE_NAME = "bacalhau-devstack.pid"
IGNORE_ENV = "IGNORE_PID_AND_PORT_FILES"


class RunFiles:
    """The port file and the pid file of the devstack, in the temp dir (`$TMPDIR`, else /tmp)."""

    def __init__(self, directory: Path | None = None) -> None:
        base = directory if directory is not None else Path(tempfile.gettempdir())
        self.port_file = base / PORT_FILE_NAME
        self.pid_file = base / PID_FILE_NAME
        self.written = False

    def check_absent(self, env: Mapping[str, str] | None = None) -> None:
        """Refuse to start when either file exists (Bacalhau's message), unless IGNORE_PID_AND_PORT_FILES is set."""
        env = os.environ if env is None else env
        if IGNORE_ENV in env:
            return
        for path in (self.port_file, self.pid_file):
            if path.exists():
                raise BacalhauError(
                    f"found file {path} - Devstack likely already running",
                    code=ErrorCode.ResourceInUse,
                    component="Devstack",
                    hint=f"stop that devstack, or remove the file if it is stale, or set {IGNORE_ENV}=1",
                )

    def write(self, *, api_port: int, pid: int) -> None:
        """Write the first node's API port and the devstack's pid (no trailing newline, as Bacalhau)."""
        self.written = True
        self.port_file.write_text(str(api_port))
        self.pid_file.write_text(str(pid))

    def remove(self) -> None:
        """Remove both files if this devstack wrote them (files of another devstack are left alone)."""
        if not self.written:
            return
        for path in (self.port_file, self.pid_file):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
