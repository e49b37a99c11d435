"""Profiles end to end: the real `bacalhau` CLI, its own data dir and HOME, a real node and a dead port.

The CLI runs without BACALHAU_API_HOST/PORT, so only profiles (or explicit flags) say where the API is.
"""

from __future__ import annotations

import os
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from scenario_jobs import JobWatch, items_of, one_job_id, parse_output

from serve_node import BacalhauNode, _clean_env, find_free_port, missing_prerequisite

pytestmark = pytest.mark.scenario

ROOT = Path(__file__).resolve().parents[2]
NOOP_JOB = ROOT / "examples" / "jobs" / "noop-ops.yaml"

Run = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def client_dir(tmp_path: Path) -> Path:
    """The CLI user's BACALHAU_DIR (separate from the node's)."""
    return tmp_path / "client-home" / ".bacalhau"


@pytest.fixture
def bacalhau(bacalhau_bin: Path, client_dir: Path, tmp_path: Path) -> Run:
    """`bacalhau(*args, env=None, input=None)`: the real CLI with an isolated HOME and data dir."""
    home = client_dir.parent
    home.mkdir(parents=True, exist_ok=True)

    def run(*args: str, env: dict[str, str] | None = None, input: str | None = None,
            timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
        full_env = _clean_env({"HOME": str(home), "BACALHAU_DIR": str(client_dir), **(env or {})})
        return subprocess.run([str(bacalhau_bin), *args], input=input, capture_output=True, text=True,
                              env=full_env, timeout=timeout, check=False, cwd=tmp_path,
                              stdin=None if input is not None else subprocess.DEVNULL)

    return run


@pytest.fixture
def dead_port() -> int:
    """A port nothing listens on."""
    return find_free_port()


@pytest.fixture
def profiles(bacalhau: Run, shared_node: BacalhauNode, dead_port: int) -> Run:
    """`live` (host:port form) at the shared node, `dead` (URL form, short timeout) at a closed port."""
    ok(bacalhau, "profile", "save", "live", "--endpoint", f"127.0.0.1:{shared_node.api_port}",
       "--description", "the test node")
    ok(bacalhau, "profile", "save", "dead", "--endpoint", f"http://127.0.0.1:{dead_port}", "--timeout", "5s")
    return bacalhau


def ok(run: Run, *args: str, **kwargs: object) -> subprocess.CompletedProcess[str]:
    result = run(*args, **kwargs)
    assert result.returncode == 0, describe(result)
    return result


def fails(run: Run, *args: str, **kwargs: object) -> subprocess.CompletedProcess[str]:
    result = run(*args, **kwargs)
    assert result.returncode == 1, describe(result)
    assert "Traceback" not in result.stderr, describe(result)
    return result


def describe(result: subprocess.CompletedProcess[str]) -> str:
    return f"`{' '.join(map(str, result.args))}` exited {result.returncode}\n" \
           f"--- stdout ---\n{result.stdout}\n--- stderr ---\n{result.stderr}"


def alive_via(run: Run, *args: str, **kwargs: object) -> subprocess.CompletedProcess[str]:
    return run(*args, "agent", "alive", "--output", "json", **kwargs)


def reached(result: subprocess.CompletedProcess[str]) -> bool:
    return result.returncode == 0 and parse_output(result.stdout) == {"Status": "OK"}


def test_saved_profiles_are_listed_shown_and_stored_as_bacalhau_stores_them(
    profiles: Run, client_dir: Path, shared_node: BacalhauNode, dead_port: int
) -> None:
    ok(profiles, "profile", "select", "live")
    table = ok(profiles, "profile", "list").stdout.splitlines()
    assert table[0].split() == ["CURRENT", "NAME", "ENDPOINT", "AUTH"], table
    assert table[1].split() == ["dead", f"http://127.0.0.1:{dead_port}"], table
    assert table[2].split() == ["*", "live", f"127.0.0.1:{shared_node.api_port}"], table

    shown = ok(profiles, "profile", "show").stdout.splitlines()
    assert shown == ["Name:        live (current)", f"Endpoint:    127.0.0.1:{shared_node.api_port}",
                     "Auth:        none", "TLS:         secure", "Timeout:     30s", "Description: the test node"]

    folder = client_dir / "profiles"
    assert sorted(p.name for p in folder.iterdir()) == ["current", "dead.yaml", "live.yaml"]
    assert os.readlink(folder / "current") == "live.yaml"
    assert (folder / "dead.yaml").read_text() == f"endpoint: http://127.0.0.1:{dead_port}\ntimeout: 5s\n"


def test_the_selected_profile_is_where_commands_go(profiles: Run, shared_node: BacalhauNode, dead_port: int) -> None:
    ok(profiles, "profile", "select", "live")
    assert reached(alive_via(profiles))
    job_id = one_job_id(ok(profiles, "job", "run", "--wait=false", "--id-only", str(NOOP_JOB)).stdout)
    # The job really is on the profile's node, and `job list` through the profile shows it.
    JobWatch(shared_node.url, shared_node.log_excerpt).wait_state(job_id, "Completed")
    listed = items_of(parse_output(ok(profiles, "job", "list", "--output", "json").stdout))
    assert job_id in [job["ID"] for job in listed]

    ok(profiles, "profile", "select", "dead")
    result = fails(profiles, "job", "list")
    assert f"127.0.0.1:{dead_port}" in result.stderr, describe(result)


def test_profile_flag_beats_env_which_beats_the_selection(profiles: Run) -> None:
    ok(profiles, "profile", "select", "dead")
    assert not reached(alive_via(profiles))
    assert reached(alive_via(profiles, "--profile", "live"))
    assert reached(profiles("agent", "alive", "--profile", "live", "--output", "json"))  # after the verb too
    assert reached(alive_via(profiles, env={"BACALHAU_PROFILE": "live"}))
    assert not reached(alive_via(profiles, "--profile", "dead", env={"BACALHAU_PROFILE": "live"}))
    shown = ok(profiles, "profile", "show", env={"BACALHAU_PROFILE": "live"}).stdout
    assert shown.startswith("Name:        live\n"), shown


def test_api_flags_and_env_beat_profiles(profiles: Run, shared_node: BacalhauNode, dead_port: int) -> None:
    port = str(shared_node.api_port)
    ok(profiles, "profile", "select", "dead")
    assert reached(alive_via(profiles, "--api-port", port))
    assert reached(alive_via(profiles, env={"BACALHAU_API_PORT": port}))
    assert reached(alive_via(profiles, "--profile", "dead", "--api-host", "127.0.0.1", "--api-port", port))
    ok(profiles, "profile", "select", "live")
    assert not reached(alive_via(profiles, "--api-port", str(dead_port)))


def test_deleting_profiles(profiles: Run) -> None:
    ok(profiles, "profile", "select", "live")
    refused = ok(profiles, "profile", "delete", "live", input="n\n")
    assert refused.stdout == 'Profile "live" is the current profile. Delete anyway? [y/N]: Deletion cancelled\n'
    assert ok(profiles, "profile", "delete", "dead").stdout == 'Profile "dead" deleted\n'
    assert ok(profiles, "profile", "delete", "live", "-f").stdout == 'Profile "live" deleted\n'
    assert ok(profiles, "profile", "list").stdout == "No profiles found\n"
    assert "no current profile set" in fails(profiles, "profile", "show").stderr
    assert 'profile "live" not found' in fails(profiles, "profile", "delete", "live").stderr
    # A command naming a deleted profile says so, then tries the default address as Bacalhau does.
    result = alive_via(profiles, "--profile", "live", env={"BACALHAU_API_HOST": "127.0.0.1", "BACALHAU_API_PORT": "1"})
    assert result.returncode == 1 and "127.0.0.1:1" in result.stderr, describe(result)
    result = alive_via(profiles, "--profile", "live")
    assert 'Warning: profile "live" not found; using the default API address' in result.stderr, describe(result)


def test_a_profile_timeout_bounds_each_request(bacalhau: Run) -> None:
    with socket.socket() as silent:  # accepts connections (backlog) and never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        ok(bacalhau, "profile", "save", "slow", "--endpoint", f"127.0.0.1:{silent.getsockname()[1]}",
           "--timeout", "1s", "--select")
        started = time.monotonic()
        result = fails(bacalhau, "agent", "alive", timeout=25)
        elapsed = time.monotonic() - started
    assert "timed out" in result.stderr, describe(result)
    assert elapsed < 25, elapsed  # the client default (30 s) would not have returned yet


# -- a TLS front with a self-signed certificate, as a load balancer would stand before a cluster --------


class _Forward(BaseHTTPRequestHandler):
    upstream = ""

    def _forward(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
        with httpx.Client(timeout=30) as http:
            resp = http.request(self.command, self.upstream + self.path, content=body, headers=headers)
        self.send_response(resp.status_code)
        for key, value in resp.headers.items():
            if key.lower() not in ("content-length", "transfer-encoding", "content-encoding", "connection"):
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(resp.content)))
        self.end_headers()
        self.wfile.write(resp.content)

    do_GET = do_PUT = do_POST = do_DELETE = _forward

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def tls_front(shared_node: BacalhauNode, tmp_path: Path) -> Iterator[str]:
    """https://127.0.0.1:<port> forwarding to the shared node, with a self-signed certificate."""
    openssl = shutil.which("openssl")
    if openssl is None:
        missing_prerequisite("openssl is not installed: cannot make a self-signed certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run([openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True, timeout=60)
    handler = type("Forward", (_Forward,), {"upstream": shared_node.url})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def test_insecure_profiles_accept_a_self_signed_certificate(bacalhau: Run, tls_front: str) -> None:
    ok(bacalhau, "profile", "save", "tls", "--endpoint", tls_front, "--select")
    refused = fails(bacalhau, "agent", "alive")
    assert "certificate verification failed" in refused.stderr, describe(refused)

    ok(bacalhau, "profile", "save", "tls", "--insecure")
    assert "TLS:         insecure" in ok(bacalhau, "profile", "show").stdout
    assert reached(alive_via(bacalhau))
    assert isinstance(parse_output(ok(bacalhau, "job", "list", "--output", "json").stdout), list)
