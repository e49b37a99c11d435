"""Identity keys of input sources: one string per piece of data, computed from the job spec alone.

A compute node keys what it holds (input cache entries, allow-listed folders, IPFS CIDs it fetched)
with these functions, and the orchestrator keys a job's inputs with the same ones, so "does node N
hold this input?" is a dictionary lookup on both sides. No network and no secret is involved: a URL
or an S3 location is hashed (a password or a token in a URL never leaves the node in a report), a CID
and a local path are kept as they are (neither is secret, and a path's ancestors must be matchable).

    url:<sha256>    urlDownload: the URL (credentials included: they may change the content)
    s3:<sha256>     s3: endpoint, bucket, key, version, filter and checksum
    ipfs:<cid>      ipfs: the CID
    local:<path>    local / localDirectory: the normalised absolute SourcePath
"""

from __future__ import annotations

import hashlib
import json
import posixpath
from typing import Final

from bacalhau.models import constants as c
from bacalhau.models.errors import ValidationFailed
from bacalhau.models.job import SpecConfig
from bacalhau.s3.location import S3Location, source_location

KIND_URL: Final = "url"
KIND_S3: Final = "s3"
KIND_IPFS: Final = "ipfs"
KIND_LOCAL: Final = "local"


def identity_key(kind: str, *parts: str) -> str:
    """`kind:` and a SHA-256 of the parts identifying a source (so that no credential is ever stored or
    sent as part of a key)."""
    return f"{kind}:{hashlib.sha256(json.dumps(parts).encode()).hexdigest()}"


def url_key(url: str) -> str:
    """The key of a urlDownload URL (already stripped of surrounding spaces, as staging does)."""
    return identity_key(KIND_URL, url)


def s3_key(location: S3Location) -> str:
    """The key of an s3 source: what names the objects, and the checksum they were verified against (an
    entry fetched without checking it must not satisfy a job asking for it). Not the region: the
    endpoint and bucket already say where the objects are."""
    return identity_key(
        KIND_S3,
        location.endpoint,
        location.bucket,
        location.key,
        location.version_id,
        location.filter,
        location.checksum_sha256,
    )


def ipfs_key(cid: str) -> str:
    """The key of an IPFS CID (content: no hashing needed)."""
    return f"{KIND_IPFS}:{cid}"


def local_key(path: str) -> str:
    """The key of a local path: normalised (`/data/./a/` and `/data/a` are one key), symlinks not resolved
    (the orchestrator cannot resolve them; a node reports its allow-listed paths as configured)."""
    # normpath keeps a leading `//` (POSIX leaves its meaning to the system; Linux reads it as `/`).
    return f"{KIND_LOCAL}:/{posixpath.normpath(path).lstrip('/')}"


def kind_of(key: str) -> str:
    """The kind a key starts with (url, s3, ipfs, local)."""
    return key.split(":", 1)[0]


def input_key(spec: SpecConfig) -> str | None:
    """The key of an input source, or None for one that names no data worth placing by (inline data
    travels with the job) or that is malformed (its staging will say why)."""
    kind = spec.type.lower()
    if kind == c.STORAGE_URL.lower():
        url = spec.param("URL")
        return url_key(url.strip()) if isinstance(url, str) and url.strip() else None
    if kind == c.STORAGE_S3:
        try:
            return s3_key(source_location(spec))
        except ValidationFailed:
            return None
    if kind == c.STORAGE_IPFS:
        cid = spec.param("CID")
        return ipfs_key(cid.strip()) if isinstance(cid, str) and cid.strip() else None
    if kind in (c.STORAGE_LOCAL, c.STORAGE_LOCAL_DIRECTORY.lower()):
        path = spec.param("SourcePath")
        return local_key(path) if isinstance(path, str) and posixpath.isabs(path) else None
    return None


def ancestors(key: str) -> list[str]:
    """The keys that contain `key`'s data: itself, and for a local path every folder above it (a node
    reporting `/data` holds `/data/a/b.csv`). Innermost first."""
    if kind_of(key) != KIND_LOCAL:
        return [key]
    path = key.split(":", 1)[1]
    found = [key]
    while True:
        parent = posixpath.dirname(path)
        if parent == path or not parent:  # bounded whatever the path: dirname("/") is "/"
            return found
        path = parent
        found.append(local_key(path))
