"""A child process that cannot outlive the process that started it (Linux `PR_SET_PDEATHSIG`).

Used for the node's own nats-server and for a hybrid node's compute child: a node killed with SIGKILL
must not leave either behind, holding its ports and files while the next start wants them.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
from collections.abc import Callable

_PR_SET_PDEATHSIG = 1


def die_with_parent(sig: signal.Signals = signal.SIGTERM) -> Callable[[], None] | None:
    """A preexec hook asking the kernel to send `sig` to the child when we die (Linux only; None elsewhere).

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
    term = int(sig)

    def preexec() -> None:
        prctl(_PR_SET_PDEATHSIG, term, 0, 0, 0)
        # We may have died between fork and prctl: then the signal will never come.
        if os.getppid() != parent:
            os._exit(1)

    return preexec
