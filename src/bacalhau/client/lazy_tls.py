"""Transports that load the TLS certificate store only when an https:// URL is first requested.

Building httpx's default verified SSL context costs 50-85 ms, more than a whole `bacalhau` command
against a local node spends talking to it. Plain-HTTP requests never need it, so the verified
transport is created on first use; https:// requests are still verified exactly as httpx does.
"""

from __future__ import annotations

import os
import ssl

import httpx


class LazyVerifiedTransport(httpx.BaseTransport):
    """httpx.HTTPTransport() with default verification, constructed on the first request."""

    def __init__(self) -> None:
        self._inner: httpx.HTTPTransport | None = None

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if self._inner is None:
            self._inner = httpx.HTTPTransport()
        return self._inner.handle_request(request)

    def close(self) -> None:
        if self._inner is not None:
            self._inner.close()


class LazyVerifiedAsyncTransport(httpx.AsyncBaseTransport):
    """httpx.AsyncHTTPTransport() with default verification, constructed on the first request."""

    def __init__(self) -> None:
        self._inner: httpx.AsyncHTTPTransport | None = None

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self._inner is None:
            self._inner = httpx.AsyncHTTPTransport()
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        if self._inner is not None:
            await self._inner.aclose()


def ca_context(ca_file: str) -> ssl.SSLContext:
    """A client SSL context trusting the CA certificate(s) in `ca_file` (API.TLS.CAFile); ConfigurationError
    when it cannot be read, as Bacalhau refuses a CA file that does not exist."""
    from bacalhau.models.errors import ConfigurationError

    if not os.path.isfile(ca_file):
        raise ConfigurationError(f'CA certificate file "{ca_file}" does not exist', hint="fix API.TLS.CAFile")
    try:
        return ssl.create_default_context(cafile=ca_file)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigurationError(f"CA certificate file {ca_file!r} cannot be used: {exc}",
                                 hint="API.TLS.CAFile must hold PEM certificates") from exc


def websocket_ssl(url: str, *, verify_tls: bool, ca_file: str = "") -> ssl.SSLContext | None:
    """The SSL context for a wss:// URL (None: the default, or not TLS at all)."""
    if not url.startswith("wss://"):
        return None
    if ca_file:
        return ca_context(ca_file)
    return None if verify_tls else unverified_ssl_context()


def plain_http_sync(
    *, verify_tls: bool = True, ca_file: str = ""
) -> tuple[httpx.BaseTransport, dict[str, httpx.BaseTransport]]:
    """(default transport, mounts): plain HTTP without an SSL context, HTTPS verified and built lazily.

    The default transport must be given too: httpx builds a verified one eagerly otherwise. With
    `verify_tls=False` (a profile's `tls.insecure`) HTTPS certificates are not checked at all.
    """
    https: httpx.BaseTransport
    if ca_file:
        https = httpx.HTTPTransport(verify=ca_context(ca_file))
    else:
        https = LazyVerifiedTransport() if verify_tls else httpx.HTTPTransport(verify=False)
    return httpx.HTTPTransport(verify=False), {"https://": https}


def plain_http_async(
    *, verify_tls: bool = True, ca_file: str = ""
) -> tuple[httpx.AsyncBaseTransport, dict[str, httpx.AsyncBaseTransport]]:
    """The async counterpart of plain_http_sync."""
    https: httpx.AsyncBaseTransport
    if ca_file:
        https = httpx.AsyncHTTPTransport(verify=ca_context(ca_file))
    else:
        https = LazyVerifiedAsyncTransport() if verify_tls else httpx.AsyncHTTPTransport(verify=False)
    return httpx.AsyncHTTPTransport(verify=False), {"https://": https}


def unverified_ssl_context() -> ssl.SSLContext:
    """A client SSL context that accepts any certificate (for wss:// with `verify_tls=False`)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context
