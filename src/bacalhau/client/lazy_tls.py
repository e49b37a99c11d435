"""Transports that load the TLS certificate store only when an https:// URL is first requested.

Building httpx's default verified SSL context costs 50-85 ms, more than a whole `bacalhau` command
against a local node spends talking to it. Plain-HTTP requests never need it, so the verified
transport is created on first use; https:// requests are still verified exactly as httpx does.
"""

from __future__ import annotations

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


def plain_http_sync(*, verify_tls: bool = True) -> tuple[httpx.BaseTransport, dict[str, httpx.BaseTransport]]:
    """(default transport, mounts): plain HTTP without an SSL context, HTTPS verified and built lazily.

    The default transport must be given too: httpx builds a verified one eagerly otherwise. With
    `verify_tls=False` (a profile's `tls.insecure`) HTTPS certificates are not checked at all.
    """
    https: httpx.BaseTransport = LazyVerifiedTransport() if verify_tls else httpx.HTTPTransport(verify=False)
    return httpx.HTTPTransport(verify=False), {"https://": https}


def plain_http_async(
    *, verify_tls: bool = True
) -> tuple[httpx.AsyncBaseTransport, dict[str, httpx.AsyncBaseTransport]]:
    """The async counterpart of plain_http_sync."""
    https: httpx.AsyncBaseTransport = (
        LazyVerifiedAsyncTransport() if verify_tls else httpx.AsyncHTTPTransport(verify=False)
    )
    return httpx.AsyncHTTPTransport(verify=False), {"https://": https}


def unverified_ssl_context() -> ssl.SSLContext:
    """A client SSL context that accepts any certificate (for wss:// with `verify_tls=False`)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context
