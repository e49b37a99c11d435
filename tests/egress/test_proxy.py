"""EgressProxy end to end over real sockets on 127.0.0.1, with real upstreams and real clients.

Covered: absolute-form HTTP (origin-form upstream, X-Bacalhau-Job-ID replaced, Connection: close,
proxy headers dropped, a large POST body intact); CONNECT tunnels (bytes both ways, 20 MB each way);
refusals (host not in Domains, unknown job, forgotten execution, malformed/origin-form/portless
requests, an oversized head, an unresolvable name, a destination the real policy refuses, a closed
port); forget() closing a live tunnel; the per-job connection cap; start()/stop() lifecycle.
Three bugs these tests found stay covered: a malformed IPv6 URL is a 400 and frees its connection slot,
a connect timeout's 502 says it timed out, stop() leaves no handler pending on a closed loop.
Every socket has a timeout and every loop is bounded.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import logging
import logging.handlers
import os
import queue
import socket
import socketserver
import sys
import threading
import time
from collections.abc import Callable, Iterator
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from bacalhau.egress.destinations import DestinationPolicy, IPAddress
from bacalhau.egress.domains import DomainAllowList
from bacalhau.egress.proxy import MAX_HEAD_BYTES, EgressProxy

TIMEOUT = 10.0
EXECUTION, JOB = "exec-1", "job-1"
DOMAINS = ["127.0.0.1", "localhost", "nothing-here.invalid"]


class LetTestUpstreamThrough:
    """The real DestinationPolicy refuses loopback (test_destinations covers that, and one test below
    shows it through the proxy); this one lets only 127.0.0.1 through, where the test upstreams listen."""

    def refusal(self, address: IPAddress) -> str | None:
        return None if str(address) == "127.0.0.1" else "not the test upstream"


def job_at_loopback(address: IPAddress) -> str | None:
    """Identify: the test client's address 127.0.0.1 is the job's container."""
    return EXECUTION if str(address) == "127.0.0.1" else None


class Upstream(ThreadingHTTPServer):
    daemon_threads = True
    seen: list[tuple[str, Message, bytes]]  # path, headers and body of each request, as the origin saw them


class Recorder(BaseHTTPRequestHandler):
    """The origin server: records what it sees, answers with the path and a digest of the body."""

    protocol_version = "HTTP/1.1"
    timeout = TIMEOUT
    server: Upstream

    def do_GET(self) -> None:
        self._answer(b"")

    def do_POST(self) -> None:
        self._answer(self.rfile.read(int(self.headers.get("Content-Length", "0"))))

    def _answer(self, body: bytes) -> None:
        self.server.seen.append((self.path, self.headers, body))
        payload = f"upstream saw {self.path} {len(body)} {hashlib.sha256(body).hexdigest()}".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: object) -> None:
        pass


class Echo(socketserver.BaseRequestHandler):
    """A plain TCP echo; it half-closes once the client has half-closed and all is echoed."""

    def handle(self) -> None:
        self.request.settimeout(TIMEOUT)
        with contextlib.suppress(OSError):
            while data := self.request.recv(65536):
                self.request.sendall(data)
            self.request.shutdown(socket.SHUT_WR)


class EchoServer(socketserver.ThreadingTCPServer):
    daemon_threads = True


def serving(server: socketserver.TCPServer) -> Iterator[int]:
    """Run `server` in a thread for one test; yield its port."""
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(TIMEOUT)


@pytest.fixture
def upstream() -> Iterator[Upstream]:
    server = Upstream(("127.0.0.1", 0), Recorder)
    server.seen = []
    for _ in serving(server):
        yield server


@pytest.fixture
def echo_port() -> Iterator[int]:
    yield from serving(EchoServer(("127.0.0.1", 0), Echo))


@pytest.fixture
def make_proxy() -> Iterator[Callable[..., EgressProxy]]:
    made: list[EgressProxy] = []

    def make(*, domains: list[str] = DOMAINS, **kwargs: object) -> EgressProxy:
        kwargs.setdefault("identify", job_at_loopback)
        kwargs.setdefault("destinations", LetTestUpstreamThrough())
        proxy = EgressProxy(**kwargs)  # type: ignore[arg-type]
        proxy.allow(EXECUTION, JOB, DomainAllowList.of(domains))
        proxy.start("127.0.0.1", 0)
        made.append(proxy)
        return proxy

    yield make
    for proxy in made:
        assert stop_and_reap(proxy) == [], "stop() left connection handlers pending"


def stop_and_reap(proxy: EgressProxy) -> list[str]:
    """proxy.stop(), then collect here and now anything it left pending; return what such leftovers said
    when destroyed (nothing, unless stop() regresses), instead of letting them fail a later test from
    whichever thread the GC runs in."""
    said: list[str] = []
    logged: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
    handler, previous = logging.handlers.QueueHandler(logged), sys.unraisablehook
    logging.getLogger("asyncio").addHandler(handler)
    sys.unraisablehook = lambda u: said.append(f"{u.exc_type.__name__}: {u.exc_value} in {u.object!r}")
    gc.disable()
    try:
        proxy.stop()
        gc.collect()
    finally:
        gc.enable()
        sys.unraisablehook = previous
        logging.getLogger("asyncio").removeHandler(handler)
    while not logged.empty():
        said.append(logged.get().getMessage())
    return said


@contextlib.contextmanager
def silent_port() -> Iterator[int]:
    """A port whose listener never accepts and whose queue is full: new connects to it hang."""
    with socket.socket() as listener, socket.socket() as queued:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        queued.settimeout(TIMEOUT)
        queued.connect(listener.getsockname())  # fills the queue; further SYNs are dropped
        yield listener.getsockname()[1]


@pytest.fixture
def proxy(make_proxy: Callable[..., EgressProxy]) -> EgressProxy:
    return make_proxy()


def dial(proxy: EgressProxy) -> socket.socket:
    """A raw connection to the proxy, as a job's container would open it."""
    assert proxy.address is not None
    return socket.create_connection(proxy.address, timeout=TIMEOUT)


def read_all(sock: socket.socket, limit: int = 64 * 1024 * 1024) -> bytes:
    """Everything until the peer closes (a reset counts as a close)."""
    data = bytearray()
    with contextlib.suppress(ConnectionResetError):
        while len(data) < limit and (chunk := sock.recv(1 << 20)):
            data += chunk
    return bytes(data)


def answer(proxy: EgressProxy, head: bytes) -> tuple[int, str]:
    """The proxy's status and body for one raw request head."""
    with dial(proxy) as sock:
        sock.sendall(head)
        data = read_all(sock)
    status_line, _, rest = data.partition(b"\r\n")
    assert status_line.startswith(b"HTTP/1.1 "), data[:200]
    return int(status_line.split()[1]), rest.partition(b"\r\n\r\n")[2].decode()


def connect_head(authority: str) -> bytes:
    """A CONNECT request head as curl sends it."""
    return f"CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n\r\n".encode()


def open_tunnel(proxy: EgressProxy, authority: str) -> socket.socket:
    """A CONNECT tunnel, its "200 Connection established" consumed."""
    sock = dial(proxy)
    sock.sendall(connect_head(authority))
    head = b""
    while not head.endswith(b"\r\n\r\n") and len(head) < 4096:
        byte = sock.recv(1)
        if not byte:
            break
        head += byte
    if head != b"HTTP/1.1 200 Connection established\r\n\r\n":
        sock.close()
        raise AssertionError(f"no tunnel: {head!r}")
    return sock


def client(proxy: EgressProxy) -> httpx.Client:
    """A real HTTP client told to use the proxy (and nothing from the environment)."""
    assert proxy.address is not None
    host, port = proxy.address
    return httpx.Client(proxy=f"http://{host}:{port}", trust_env=False, timeout=TIMEOUT)


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_get_reaches_upstream_in_origin_form_with_the_job_id(proxy: EgressProxy, upstream: Upstream, host: str) -> None:
    port = upstream.server_address[1]
    with client(proxy) as http:
        response = http.get(f"http://{host}:{port}/data/file.csv?a=1&b=two", headers={"X-Bacalhau-Job-ID": "forged"})
    assert response.status_code == 200
    assert response.text.startswith("upstream saw /data/file.csv?a=1&b=two 0 ")
    [(path, headers, _)] = upstream.seen
    assert path == "/data/file.csv?a=1&b=two"
    assert headers.get_all("X-Bacalhau-Job-ID") == [JOB]
    assert headers.get_all("Connection") == ["close"]
    assert headers["Host"] == f"{host}:{port}"


def test_proxy_headers_are_not_passed_on(proxy: EgressProxy, upstream: Upstream) -> None:
    port = upstream.server_address[1]
    head = (
        f"GET http://127.0.0.1:{port}/x HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nProxy-Authorization: Basic dTpw\r\n"
        "Proxy-Connection: keep-alive\r\nConnection: keep-alive\r\nx-bacalhau-job-id: a\r\nX-Kept: yes\r\n\r\n"
    ).encode()
    status, body = answer(proxy, head)
    assert status == 200 and body.startswith("upstream saw /x ")
    [(_, headers, _)] = upstream.seen
    names = {name.lower() for name in headers}
    assert "proxy-authorization" not in names and "proxy-connection" not in names
    assert headers.get_all("Connection") == ["close"]
    assert headers.get_all("X-Bacalhau-Job-ID") == [JOB]
    assert headers["X-Kept"] == "yes"


def test_large_post_body_arrives_intact(proxy: EgressProxy, upstream: Upstream) -> None:
    body = os.urandom(3 * 1024 * 1024 + 17)
    with client(proxy) as http:
        response = http.post(f"http://127.0.0.1:{upstream.server_address[1]}/upload", content=body)
    assert response.status_code == 200
    assert response.text == f"upstream saw /upload {len(body)} {hashlib.sha256(body).hexdigest()}"
    assert upstream.seen[0][2] == body


def test_connect_tunnel_carries_bytes_both_ways(proxy: EgressProxy, echo_port: int) -> None:
    with open_tunnel(proxy, f"127.0.0.1:{echo_port}") as sock:
        sock.sendall(b"ping")
        assert sock.recv(4) == b"ping"
        sock.sendall(b"\x00\xffbinary\r\n\r\n")
        sock.shutdown(socket.SHUT_WR)
        assert read_all(sock) == b"\x00\xffbinary\r\n\r\n"


def test_connect_tunnel_moves_20_mb_each_way(proxy: EgressProxy, echo_port: int) -> None:
    payload = os.urandom(20 * 1024 * 1024)
    with open_tunnel(proxy, f"localhost:{echo_port}") as sock:
        # Both ways at once: the echo sends back while we are still sending.
        sender = threading.Thread(target=lambda: (sock.sendall(payload), sock.shutdown(socket.SHUT_WR)), daemon=True)
        sender.start()
        received = read_all(sock, limit=len(payload) + 1)
        sender.join(TIMEOUT)
    assert not sender.is_alive()
    assert len(received) == len(payload)
    assert hashlib.sha256(received).digest() == hashlib.sha256(payload).digest()


def test_host_outside_domains_is_refused_naming_host_and_domains(proxy: EgressProxy) -> None:
    with client(proxy) as http:
        response = http.get("http://example.com/")
    assert response.status_code == 403
    assert (
        "example.com is not in the job's Network.Domains (127.0.0.1, localhost, nothing-here.invalid)" in response.text
    )
    status, body = answer(proxy, connect_head("www.example.org:443"))
    assert status == 403 and "www.example.org is not in the job's Network.Domains" in body


def test_forget_refuses_new_connections_and_closes_open_tunnels(proxy: EgressProxy, echo_port: int) -> None:
    with open_tunnel(proxy, f"127.0.0.1:{echo_port}") as sock:
        sock.sendall(b"hello")
        assert sock.recv(5) == b"hello"
        proxy.forget(EXECUTION)
        proxy.forget(EXECUTION)  # idempotent
        assert read_all(sock) == b""
    status, body = answer(proxy, connect_head(f"127.0.0.1:{echo_port}"))
    assert status == 403 and "127.0.0.1 is not a job of this node" in body


def test_unknown_source_is_refused(make_proxy: Callable[..., EgressProxy], echo_port: int) -> None:
    proxy = make_proxy(identify=lambda address: None)
    status, body = answer(proxy, connect_head(f"127.0.0.1:{echo_port}"))
    assert status == 403 and "127.0.0.1 is not a job of this node with network type HTTP" in body


@pytest.mark.parametrize(
    "head, status, words",
    [
        (b"HELLO\r\n\r\n", 400, "malformed request"),
        (b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", 400, "send absolute http:// URLs"),
        (b"GET https://127.0.0.1/ HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", 400, "send absolute http:// URLs"),
        (connect_head("127.0.0.1"), 400, "CONNECT needs host:port, got '127.0.0.1'"),
        (connect_head("127.0.0.1:70000"), 400, "bad port"),
        (b"GET http://a/ HTTP/1.1\r\nHost: a\r\nX-Big: " + b"x" * MAX_HEAD_BYTES + b"\r\n\r\n", 431, "larger than"),
        (connect_head("nothing-here.invalid:443"), 502, "cannot resolve nothing-here.invalid"),
    ],
)
def test_bad_requests_get_an_answer(proxy: EgressProxy, head: bytes, status: int, words: str) -> None:
    got, body = answer(proxy, head)
    assert (got, words in body) == (status, True), body


def test_the_real_policy_refuses_loopback_through_the_proxy(
    make_proxy: Callable[..., EgressProxy], echo_port: int
) -> None:
    proxy = make_proxy(destinations=DestinationPolicy())
    status, body = answer(proxy, connect_head(f"127.0.0.1:{echo_port}"))
    assert status == 403
    assert "127.0.0.1 resolves to 127.0.0.1 (loopback), which jobs may not reach" in body
    status, body = answer(proxy, connect_head(f"localhost:{echo_port}"))
    assert status == 403 and "localhost resolves to 127.0.0.1 (loopback)" in body
    # Whatever reason the policy gives is passed on to the job.
    status, body = answer(make_proxy(domains=["127.0.0.2"]), connect_head("127.0.0.2:80"))
    assert status == 403 and "127.0.0.2 resolves to 127.0.0.2 (not the test upstream)" in body


def test_closed_port_is_a_bad_gateway(proxy: EgressProxy) -> None:
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port = probe.getsockname()[1]
    status, body = answer(proxy, connect_head(f"127.0.0.1:{port}"))
    assert status == 502 and f"cannot connect to 127.0.0.1:{port}" in body


def test_connections_per_job_are_capped(make_proxy: Callable[..., EgressProxy], echo_port: int) -> None:
    proxy = make_proxy(max_connections_per_job=2)
    authority = f"127.0.0.1:{echo_port}"
    first, second = open_tunnel(proxy, authority), open_tunnel(proxy, authority)
    with first, second:
        status, body = answer(proxy, connect_head(authority))
        assert status == 503 and "too many open connections" in body
        first.close()
        deadline = time.monotonic() + TIMEOUT  # the slot comes back once the proxy sees the close
        while True:
            try:
                open_tunnel(proxy, authority).close()
                break
            except AssertionError:
                assert time.monotonic() < deadline, "the closed tunnel's slot never came back"
                time.sleep(0.05)


def test_stop_closes_tunnels_and_start_stop_are_idempotent(proxy: EgressProxy, echo_port: int) -> None:
    address = proxy.address
    assert address is not None and proxy.start("127.0.0.1", 0) == address
    with open_tunnel(proxy, f"127.0.0.1:{echo_port}") as sock:
        sock.sendall(b"x")
        assert sock.recv(1) == b"x"
        stop_and_reap(proxy)
        assert read_all(sock) == b""
    proxy.stop()
    assert proxy.address is None
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(address, timeout=TIMEOUT).close()


def test_malformed_ipv6_url_is_a_bad_request_and_frees_its_slot(
    make_proxy: Callable[..., EgressProxy], echo_port: int
) -> None:
    proxy = make_proxy(max_connections_per_job=1)
    assert answer(proxy, b"GET http://[::1/ HTTP/1.1\r\nHost: x\r\n\r\n")[0] == 400
    open_tunnel(proxy, f"127.0.0.1:{echo_port}").close()


def test_connect_timeout_says_timed_out(make_proxy: Callable[..., EgressProxy]) -> None:
    proxy = make_proxy(connect_timeout_s=0.5)
    with silent_port() as port:
        status, body = answer(proxy, connect_head(f"127.0.0.1:{port}"))
    assert status == 502 and "timed out" in body, body


def test_stop_leaves_no_connection_handler_pending(make_proxy: Callable[..., EgressProxy]) -> None:
    proxy = make_proxy()
    with silent_port() as port, dial(proxy) as sock:
        sock.sendall(connect_head(f"127.0.0.1:{port}"))
        time.sleep(0.3)  # the proxy is now waiting for its connect to the silent port (10 s)
        said = stop_and_reap(proxy)
    assert said == []
