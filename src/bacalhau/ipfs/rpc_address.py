"""Where a Kubo RPC API is: `http://host:port` or the multiaddr Kubo prints (`/ip4/127.0.0.1/tcp/5001`)."""

from __future__ import annotations

from urllib.parse import urlsplit

from bacalhau.models.errors import ErrorCode, StorageError

_HOST_PROTOCOLS = {"ip4", "ip6", "dns", "dns4", "dns6"}


def rpc_base_url(address: str) -> str:
    """The base URL for `address`; StorageError (ConfigurationError) when it is neither form.

    Accepted: `http(s)://host:port`, `host:port`, and `/ip4|ip6|dns|dns4|dns6/<host>/tcp/<port>[/http|/https]`.
    """
    text = address.strip()
    if text.startswith("/"):
        return _from_multiaddr(address, text)
    if "://" not in text:
        text = f"http://{text}"
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as exc:
        raise _invalid(address) from exc
    if parts.scheme not in ("http", "https") or not parts.hostname or (parts.path not in ("", "/")):
        raise _invalid(address)
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return f"{parts.scheme}://{host}" + (f":{port}" if port else "")


def _from_multiaddr(address: str, text: str) -> str:
    parts = text.strip("/").split("/")
    scheme = "http"
    if len(parts) == 5 and parts[4] in ("http", "https"):
        scheme = parts.pop()
    if len(parts) != 4 or parts[0] not in _HOST_PROTOCOLS or parts[2] != "tcp" or not parts[3].isdigit():
        raise _invalid(address)
    host = f"[{parts[1]}]" if parts[0] == "ip6" else parts[1]
    return f"{scheme}://{host}:{int(parts[3])}"


def _invalid(address: str) -> StorageError:
    return StorageError(
        f"{address!r} is not a Kubo RPC address",
        code=ErrorCode.ConfigurationError,
        hint="use http://127.0.0.1:5001 or /ip4/127.0.0.1/tcp/5001",
    )
