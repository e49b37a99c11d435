"""Input sources from the command line: `-i` storage URIs and local files sent inline.

`-i` takes `URI[:TARGET]` or `src=URI,dst=TARGET[,opt=k=v...]` (CONTRACT.md section 4.2). Schemes:
`ipfs://CID` -> ipfs, `http(s)://` -> urlDownload, `s3://bucket/key` -> s3, `file:///path` -> local.
A local file given to `wasm run` travels inside the job as a base64 `data:` URL (the `inline` source).
Each input is returned in Bacalhau's wire shape (`{Source: {Type, Params}, Alias, Target}`), the form the
job is sent in: building it needs no models (see cli/jobspec.py).
"""

from __future__ import annotations

import base64
import os
import re
from typing import Any
from urllib.parse import urlsplit

import click

from bacalhau.models import constants as c

DEFAULT_TARGET = "/inputs"
_PORT_RE = re.compile(r"^\d+(/|$)")
SCHEMES = ("ipfs", "http", "https", "s3", "file")
# Inline inputs ride in the job spec, which the API caps at 10 MB (base64 grows data by a third).
MAX_INLINE_BYTES = 7 * 1024 * 1024
_S3_OPTS = {
    "endpoint": "Endpoint",
    "region": "Region",
    "versionid": "VersionID",
    "checksum-256": "ChecksumSHA256",
    "checksumsha256": "ChecksumSHA256",
    "filter": "Filter",
}


def parse_input(raw: str, *, default_target: str = DEFAULT_TARGET) -> dict[str, Any]:
    """One `-i` value as an input source; raise click.BadParameter explaining what is wrong."""
    options: dict[str, str] = {}
    if raw.startswith("src=") or ",dst=" in raw or raw.startswith("dst="):
        fields: dict[str, str] = {}
        for part in raw.split(","):
            key, sep, value = part.partition("=")
            key = key.strip().lower()
            if not sep:
                raise _bad(raw, f"{part!r} is not key=value")
            if key == "opt":
                okey, osep, ovalue = value.partition("=")
                if not osep:
                    raise _bad(raw, f"option {value!r} is not k=v")
                options[okey.strip().lower()] = ovalue.strip()
            elif key in ("src", "dst"):
                fields[key] = value.strip()
            else:
                options[key] = value.strip()
        uri = fields.get("src", "")
        target = fields.get("dst", "") or default_target
        if not uri:
            raise _bad(raw, "src= is required")
    else:
        uri, target = split_target(raw)
        target = target or default_target
    return {"Source": source_for_uri(uri, options, raw), "Alias": uri, "Target": target}


def split_target(raw: str) -> tuple[str, str]:
    """`URI:TARGET` -> (URI, TARGET), split as Bacalhau does at the last colon after `scheme://`; the
    target may be relative (`ipfs://CID:data`). Unlike Bacalhau, a colon inside the host part that starts
    a port (`host:8443/f`) or belongs to user info (`user:pw@host`) stays in the URI, where Bacalhau
    would take `8443/f` for the target."""
    scheme, sep, rest = raw.partition("://")
    index = rest.rfind(":")
    if not sep or index < 0 or index == len(rest) - 1:
        return raw, ""
    target = rest[index + 1 :]
    in_host = "/" not in rest[:index]
    if in_host and not target.startswith("/") and (_PORT_RE.match(target) or "@" in target):
        return raw, ""
    return f"{scheme}://{rest[:index]}", target


def source_for_uri(uri: str, options: dict[str, str], raw: str) -> dict[str, Any]:
    """The storage `{Type, Params}` a URI names."""
    parts = urlsplit(uri)
    scheme = parts.scheme.lower()
    if scheme == "ipfs":
        cid = (parts.netloc + parts.path).strip("/")
        if not cid:
            raise _bad(raw, "ipfs:// needs a CID")
        return {"Type": c.STORAGE_IPFS, "Params": {"CID": cid}}
    if scheme in ("http", "https"):
        url_params: dict[str, object] = {"URL": uri}
        for key, value in options.items():
            if key.lower() != "checksum":
                raise _bad(raw, f"unknown urlDownload option {key!r}; valid: checksum")
            url_params["Checksum"] = value
        return {"Type": c.STORAGE_URL, "Params": url_params}
    if scheme == "s3":
        if not parts.netloc:
            raise _bad(raw, "s3:// needs a bucket")
        params: dict[str, object] = {"Bucket": parts.netloc, "Key": parts.path.lstrip("/")}
        for key, value in options.items():
            name = _S3_OPTS.get(key.lower())
            if name is None:
                raise _bad(raw, f"unknown s3 option {key!r}; valid: {', '.join(sorted(_S3_OPTS))}")
            params[name] = value
        return {"Type": c.STORAGE_S3, "Params": params}
    if scheme == "file":
        path = parts.path if not parts.netloc else f"/{parts.netloc}{parts.path}"
        if not path:
            raise _bad(raw, "file:// needs an absolute path, e.g. file:///data")
        params = {"SourcePath": path}
        if options.get("rw", "").lower() in ("true", "1", "yes"):
            params["ReadWrite"] = True
        return {"Type": c.STORAGE_LOCAL, "Params": params}
    if scheme in ("git", "gitlfs"):
        raise _bad(raw, f"{scheme} inputs are not supported")
    raise _bad(raw, f"unsupported scheme {scheme or '(none)'!r}; use one of {', '.join(s + '://' for s in SCHEMES)}")


def is_uri(value: str) -> bool:
    """True for `scheme://...` and `src=...` input specs (as opposed to local file paths)."""
    return "://" in value or value.startswith("src=")


def inline_file(raw: str, *, flag: str) -> dict[str, Any]:
    """A local `path[:target]` as an inline input; the default target is `/<file name>`."""
    path, target = raw, ""
    if not os.path.isfile(raw) and ":" in raw:
        path, _, target = raw.rpartition(":")
    if not os.path.isfile(path):
        raise click.BadParameter(f"{path!r} is not a file (nor a storage URI such as ipfs:// or https://)",
                                 param_hint=flag)
    size = os.path.getsize(path)
    if size > MAX_INLINE_BYTES:
        raise click.BadParameter(
            f"{path!r} is {size} bytes; local files are sent inside the job, which is limited to "
            f"{MAX_INLINE_BYTES} bytes. Publish it somewhere and pass its URI instead",
            param_hint=flag,
        )
    with open(path, "rb") as fh:
        encoded = base64.b64encode(fh.read()).decode("ascii")
    # A relative target is kept as written, as Bacalhau's CLI does: the wasm executor reads it from `/`.
    target = target or "/" + os.path.basename(path)
    url = f"data:application/octet-stream;base64,{encoded}"
    return {"Source": {"Type": c.STORAGE_INLINE, "Params": {"URL": url}}, "Alias": "", "Target": target}


def _bad(raw: str, why: str) -> click.BadParameter:
    return click.BadParameter(f"{raw!r}: {why}", param_hint="'-i' / '--input'")
