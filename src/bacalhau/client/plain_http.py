"""Requests to an http:// API over a plain socket: HTTP/1.1 with kept-alive connections, no httpx, no http.client.

A CLI command talking to a local node spends a few ms on the request itself; importing httpx costs it
~60 ms and even http.client ~25 ms (it pulls in the email package and ssl). So sync.Client sends http://
requests here and keeps httpx for https:// (certificate handling lives in lazy_tls.py) and for callers'
own transports. This is the client side of HTTP/1.1 (RFC 9112) that a JSON API needs:

    request   METHOD target HTTP/1.1, Host, Content-Length, the client's headers, the JSON body
    response  status line (1xx interim answers skipped), headers (at most 100 lines of 64 KiB),
              body by Transfer-Encoding: chunked, else Content-Length, else up to the close;
              none for 204, 304 and HEAD. A Content-Encoding is refused: we ask for identity.

As the httpx client it replaces: the same headers, JSON bodies encoded the same way, query strings by
urlencode, no redirects followed, no proxies (the CLI's httpx client had an explicit transport, which
makes httpx ignore HTTP_PROXY too), one timeout per socket operation. A connection is reused while the
server keeps it open; one the server closed while idle is noticed before use (it reads as ready), so a
request is never sent twice.
"""

from __future__ import annotations

import json
import select
import socket
import threading
from collections.abc import Mapping
from typing import IO, TYPE_CHECKING, Any
from urllib.parse import urlencode, urlsplit

from bacalhau.client.errors import error_from_transport

if TYPE_CHECKING:
    from bacalhau.client.base import Reply
    from bacalhau.client.routes import Params

MAX_LINE = 65536  # as http.client: a status or header line longer than this is refused
MAX_HEADERS = 100
_NO_BODY = (204, 304)


class ProtocolError(Exception):
    """The server's answer is not HTTP/1.x as we read it."""


class _Connection:
    """One TCP connection and the buffered reader over it."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.reader: IO[bytes] = sock.makefile("rb")

    def close(self) -> None:
        """Close the reader and the socket."""
        self.reader.close()
        self.sock.close()

    def closed_by_peer(self) -> bool:
        """An idle kept-alive connection that reads as ready was closed by the server (or holds bytes
        nobody asked for): either way it must not carry the next request."""
        try:
            readable, _, _ = select.select([self.sock], [], [], 0)
        except (OSError, ValueError):
            return True
        return bool(readable)


class PlainHttpSender:
    """A client.base.Sender for one `http://host:port[/prefix]` base URL; safe to share between threads."""

    def __init__(self, base_url: str, *, timeout_s: float | None, headers: Mapping[str, str]) -> None:
        parts = urlsplit(base_url)
        if parts.scheme != "http":
            raise ValueError(f"PlainHttpSender speaks plain HTTP only, not {base_url!r}")
        self.base_url = base_url
        host = parts.hostname or "127.0.0.1"
        port = parts.port or 80
        # getaddrinfo encodes a str host with the idna codec (another import); an ASCII one needs none.
        self._address: tuple[str | bytes, int] = (host.encode() if host.isascii() else host, port)
        netloc = f"[{host}]" if ":" in host else host
        self._host_header = netloc if port == 80 else f"{netloc}:{port}"
        self._prefix = parts.path.rstrip("/")
        self._timeout_s = timeout_s
        self._headers = dict(headers)
        self._idle: list[_Connection] = []
        self._lock = threading.Lock()

    def send(self, method: str, path: str, params: Params, body: Any) -> Reply:
        """See client.base.Sender."""
        target = self._prefix + path + (f"?{urlencode(params)}" if params else "")
        data = b""
        headers = {"Host": self._host_header, "Accept-Encoding": "identity", **self._headers}
        if body is not None:
            # httpx's encoding of `json=`: compact, UTF-8, NaN refused.
            data = json.dumps(body, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()
            headers["Content-Type"] = "application/json"
        if body is not None or method in ("PUT", "POST", "PATCH"):
            headers["Content-Length"] = str(len(data))
        try:
            head = _request_head(method, target, headers)
            connection = self._checkout()
        except (OSError, ProtocolError) as exc:
            raise error_from_transport(exc, self.base_url) from exc
        unsent: OSError | None = None
        try:
            connection.sock.sendall(head + data)
        except (BrokenPipeError, ConnectionResetError) as exc:
            # A server may answer before reading the whole body (413 for one too large) and close: its
            # answer says more than the broken pipe, so it is read if it is there (as httpcore does).
            unsent = exc
        except OSError as exc:
            connection.close()
            raise error_from_transport(exc, self.base_url) from exc
        try:
            status, content, reusable = _read_response(connection.reader, method)
        except (OSError, ProtocolError) as exc:
            connection.close()
            raise error_from_transport(unsent or exc, self.base_url) from (unsent or exc)
        reusable = reusable and unsent is None
        if reusable:
            with self._lock:
                self._idle.append(connection)
        else:
            connection.close()
        return status, content

    def close(self) -> None:
        """See client.base.Sender."""
        with self._lock:
            idle, self._idle = self._idle, []
        for connection in idle:
            connection.close()

    def _checkout(self) -> _Connection:
        while True:
            with self._lock:
                connection = self._idle.pop() if self._idle else None
            if connection is None:
                sock = socket.create_connection(self._address, timeout=self._timeout_s)  # type: ignore[arg-type]
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                return _Connection(sock)
            if not connection.closed_by_peer():
                return connection
            connection.close()


def _request_head(method: str, target: str, headers: Mapping[str, str]) -> bytes:
    """The request line and header fields. A name or value that would end its line early (a token with a
    newline in it) is refused rather than sent as a second header or request."""
    lines = [f"{method} {target} HTTP/1.1\r\n"]
    for name, value in headers.items():
        if any(ch in name + value for ch in "\r\n\0") or ":" in name:
            raise ProtocolError(f"illegal character in the header {name.strip()!r}")
        lines.append(f"{name}: {value}\r\n")
    lines.append("\r\n")
    try:
        return "".join(lines).encode("ascii")
    except UnicodeEncodeError:
        raise ProtocolError("header values must be ASCII") from None


def _read_response(reader: IO[bytes], method: str) -> tuple[int, bytes, bool]:
    """(status, body, whether the connection may carry another request) of the next final answer."""
    while True:
        version, status = _status_line(reader)
        headers = _headers(reader)
        if not 100 <= status < 200:
            break  # 1xx answers are interim (100 Continue, 103 Early Hints): the final one follows
    connection = headers.get("connection", "").lower()
    reusable = "close" not in connection and (version == "HTTP/1.1" or "keep-alive" in connection)
    if headers.get("content-encoding", "identity").lower() != "identity":
        raise ProtocolError(f"unexpected Content-Encoding {headers['content-encoding']!r}")
    if method == "HEAD" or status in _NO_BODY:
        return status, b"", reusable
    if "chunked" in headers.get("transfer-encoding", "").lower():
        return status, _chunked(reader), reusable
    if "content-length" in headers:
        try:
            length = int(headers["content-length"])
        except ValueError:
            raise ProtocolError(f"invalid Content-Length {headers['content-length']!r}") from None
        content = reader.read(length)
        if length < 0 or len(content) != length:
            raise ProtocolError(f"the answer ended after {len(content)} of {length} bytes")
        return status, content, reusable
    return status, reader.read(), False  # delimited by the close


def _line(reader: IO[bytes]) -> bytes:
    line = reader.readline(MAX_LINE + 1)
    if len(line) > MAX_LINE:
        raise ProtocolError("a line of the answer is too long")
    return line


def _status_line(reader: IO[bytes]) -> tuple[str, int]:
    line = _line(reader)
    if not line:
        raise ProtocolError("the server closed the connection without answering")
    version, _, rest = line.decode("latin-1").rstrip("\r\n").partition(" ")
    code = rest[:3]
    if not version.startswith("HTTP/1.") or len(code) != 3 or not code.isdigit():
        raise ProtocolError(f"not an HTTP/1.x status line: {line[:100]!r}")
    return version, int(code)


def _headers(reader: IO[bytes]) -> dict[str, str]:
    """Header fields by lower-case name (repeated fields joined with commas)."""
    fields: dict[str, str] = {}
    last = ""
    for _ in range(MAX_HEADERS + 1):
        line = _line(reader).decode("latin-1")
        if line in ("\r\n", "\n", ""):
            return fields
        if line[0] in " \t" and last:  # obsolete line folding: a continuation of the previous field
            fields[last] += " " + line.strip()
            continue
        name, sep, value = line.partition(":")
        if not sep:
            raise ProtocolError(f"not a header line: {line[:100]!r}")
        last = name.strip().lower()
        fields[last] = f"{fields[last]}, {value.strip()}" if last in fields else value.strip()
    raise ProtocolError(f"more than {MAX_HEADERS} header lines")


def _chunked(reader: IO[bytes]) -> bytes:
    """A chunked body: `size-in-hex[;ext]` lines each followed by that many bytes, then trailers."""
    parts: list[bytes] = []
    while True:
        size_text = _line(reader).split(b";", 1)[0].strip()
        try:
            size = int(size_text, 16)
        except ValueError:
            raise ProtocolError(f"invalid chunk size {size_text[:20]!r}") from None
        if size == 0:
            _headers(reader)  # trailers, unused
            return b"".join(parts)
        chunk = reader.read(size)
        if len(chunk) != size or _line(reader) not in (b"\r\n", b"\n"):
            raise ProtocolError("a chunk of the answer was cut short")
        parts.append(chunk)
