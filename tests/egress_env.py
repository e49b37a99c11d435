"""A web server the tests' jobs may (or may not) reach: in a network namespace of its own, so that it is
neither loopback nor an address of this host (the egress proxy refuses both, whatever a job's Domains).

    Upstream.start()   ip netns add; veth pair 10.201.<n>.1 (host end) <-> 10.201.<n>.2 (namespace);
                       `python -m http.server` bound to 10.201.<n>.2:8000 inside it, serving a folder
                       with file.txt ("hello from upstream")
    Upstream.close()   stop the server, delete the namespace and the pair

Only the private 10.201.0.0/16 addresses on links made here are used. Needs root (skipped locally,
failed under CI=true, without it). `HostListener` is the other side: a TCP service of the host itself,
bound to 0.0.0.0, that no job may reach.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from cluster_env import NetnsLink
from parallel import worker_subnet

UPSTREAM_PORT = 8000
UPSTREAM_TEXT = "hello from upstream"


class Upstream:
    """An HTTP server in its own network namespace."""

    def __init__(self, root: Path, index: int = 0) -> None:
        self.root = root
        subnet = worker_subnet(index, first=1, span=250)
        self.link = NetnsLink(f"beg{os.getpid() % 100000}{index}", subnet, octet=201)
        self._server: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        """The server's address (inside the namespace)."""
        return self.link.node_ip

    @property
    def url(self) -> str:
        """The URL of file.txt."""
        return f"http://{self.address}:{UPSTREAM_PORT}/file.txt"

    def start(self) -> Upstream:
        """Make the namespace and start the server; wait until it answers."""
        NetnsLink.require()
        (self.root / "file.txt").write_text(UPSTREAM_TEXT + "\n")
        self.link.create()
        self._server = subprocess.Popen(
            ["ip", "netns", "exec", self.link.netns, sys.executable, "-m", "http.server", str(UPSTREAM_PORT),
             "--bind", self.address, "--directory", str(self.root)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 20
        while True:
            try:
                with socket.create_connection((self.address, UPSTREAM_PORT), timeout=2):
                    return self
            except OSError:
                if time.monotonic() > deadline or self._server.poll() is not None:
                    self.close()
                    raise RuntimeError("the upstream web server in the namespace did not start") from None
                time.sleep(0.1)

    def close(self) -> None:
        """Stop the server and remove the namespace (idempotent)."""
        if self._server is not None:
            self._server.kill()
            self._server.wait(timeout=10)
            self._server = None
        self.link.destroy()


class HostListener:
    """A TCP service of this host on 0.0.0.0:<free port> that answers "host service" to whoever connects."""

    def __init__(self) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("0.0.0.0", 0))
        self._sock.listen(16)
        self._sock.settimeout(0.5)
        self.port: int = self._sock.getsockname()[1]
        self.accepted = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except OSError:
                continue
            self.accepted += 1
            with conn:
                conn.sendall(b"host service\n")

    def close(self) -> None:
        """Stop accepting (idempotent)."""
        self._stop.set()
        self._thread.join(timeout=5)
        self._sock.close()


def host_addresses() -> list[str]:
    """This host's IPv4 addresses other than loopback (from `ip -4 -o addr`)."""
    out = subprocess.run(["ip", "-4", "-o", "addr"], capture_output=True, text=True, timeout=10, check=True).stdout
    found = [line.split()[3].split("/")[0] for line in out.splitlines() if len(line.split()) > 3]
    return [address for address in found if not address.startswith("127.")]
