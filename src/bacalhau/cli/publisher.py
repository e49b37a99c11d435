"""What a task publishes and where: `-p/--publisher` and `-o/--output name:/path`.

`-p` takes a publisher type (`local`, `ipfs`, `noop`, `s3managed`) or `s3://bucket/key[,opt=k=v...]`
with options `region`, `endpoint` and `encoding` (CONTRACT.md section 1.7). Both come back in
Bacalhau's wire shape (`{Type, Params}`, `{Name, Path}`), the form the job is sent in.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

import click

from bacalhau.models import constants as c

SIMPLE_PUBLISHERS = (c.PUBLISHER_LOCAL, c.PUBLISHER_IPFS, c.PUBLISHER_NOOP, c.PUBLISHER_S3_MANAGED)
_S3_OPTS = {"region": "Region", "endpoint": "Endpoint", "encoding": "Encoding"}


def parse_publisher(raw: str) -> dict[str, Any] | None:
    """The publisher `{Type, Params}` for a `-p` value, or None when the flag was not given."""
    raw = raw.strip()
    if not raw:
        return None
    head, *rest = [part.strip() for part in raw.split(",")]
    options: dict[str, str] = {}
    for part in rest:
        key, sep, value = part.removeprefix("opt=").partition("=")
        if not sep:
            raise _bad(raw, f"option {part!r} is not k=v")
        options[key.strip().lower()] = value.strip()
    lowered = head.lower()
    if "://" not in head:
        name = lowered.removesuffix(":")
        match = next((p for p in SIMPLE_PUBLISHERS if p.lower() == name), None)
        if match is None:
            valid = ", ".join([*SIMPLE_PUBLISHERS, "s3://bucket/key"])
            raise _bad(raw, f"unknown publisher {head!r}; valid: {valid}")
        return {"Type": match, "Params": {}}
    parts = urlsplit(head)
    scheme = parts.scheme.lower()
    if scheme == "ipfs":
        return {"Type": c.PUBLISHER_IPFS, "Params": {}}
    if scheme != "s3":
        raise _bad(raw, f"unsupported publisher scheme {scheme!r}; use s3://bucket/key")
    if not parts.netloc:
        raise _bad(raw, "s3:// needs a bucket")
    params: dict[str, object] = {"Bucket": parts.netloc, "Key": parts.path.lstrip("/")}
    for key, value in options.items():
        if key not in _S3_OPTS:
            raise _bad(raw, f"unknown s3 option {key!r}; valid: {', '.join(_S3_OPTS)}")
        params[_S3_OPTS[key]] = value
    return {"Type": c.PUBLISHER_S3, "Params": params}


def parse_result_paths(values: Iterable[str]) -> list[dict[str, str]]:
    """`-o name:/path` values as `{Name, Path}` (a bare `/path` is named after its last folder)."""
    out: list[dict[str, str]] = []
    for raw in values:
        name, sep, path = raw.partition(":")
        if not sep:
            name, path = posixpath.basename(raw.rstrip("/")), raw
        if not path.startswith("/"):
            raise click.BadParameter(f"{raw!r}: the path must be absolute, e.g. outputs:/outputs",
                                     param_hint="'-o' / '--output'")
        if not name:
            raise click.BadParameter(f"{raw!r}: the result needs a name, e.g. outputs:/outputs",
                                     param_hint="'-o' / '--output'")
        out.append({"Name": name, "Path": path})
    return out


def _bad(raw: str, why: str) -> click.BadParameter:
    return click.BadParameter(f"{raw!r}: {why}", param_hint="'-p' / '--publisher'")
