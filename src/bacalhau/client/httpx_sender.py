"""Requests through httpx: https:// URLs (verified lazily, see lazy_tls.py), a CA file, or a caller's own
httpx transport (tests use httpx.MockTransport). Plain http:// goes through plain_http.py instead."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import httpx

from bacalhau.client.errors import error_from_transport

if TYPE_CHECKING:
    from bacalhau.client.base import Reply
    from bacalhau.client.routes import Params
from bacalhau.client.lazy_tls import plain_http_sync


class HttpxSender:
    """A client.base.Sender over an httpx.Client."""

    def __init__(
        self,
        base_url: str,
        *,
        timeout_s: float | None,
        headers: Mapping[str, str],
        transport: httpx.BaseTransport | None = None,
        verify_tls: bool = True,
        ca_file: str = "",
    ) -> None:
        self.base_url = base_url
        # Without an explicit transport: no SSL context for plain HTTP (see lazy_tls).
        mounts = None
        if transport is None:
            transport, mounts = plain_http_sync(verify_tls=verify_tls, ca_file=ca_file)
        self._http = httpx.Client(
            base_url=base_url, timeout=timeout_s, headers=dict(headers), transport=transport, mounts=mounts
        )

    def send(self, method: str, path: str, params: Params, body: Any) -> Reply:
        """See client.base.Sender."""
        try:
            response = self._http.request(method, path, params=tuple(params), json=body)
        except httpx.TransportError as exc:
            raise error_from_transport(exc, self.base_url) from exc
        return response.status_code, response.content

    def close(self) -> None:
        """See client.base.Sender."""
        self._http.close()
