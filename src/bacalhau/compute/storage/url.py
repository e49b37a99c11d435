"""The `urlDownload` input source: a file fetched over http(s) onto the compute node's disk.

The body is streamed into a temporary file inside a fresh numbered folder of the work dir, then renamed
atomically to `<work_dir>/<n>/<name>`; the folder is mounted at the input's Target, so the job
sees `<Target>/<name>` (Bacalhau's layout), where `name` comes from the response's Content-Disposition
filename, else the basename of the (final, after redirects) URL path, else `download`. Redirects are
followed by hand so that a loop, too many hops or a redirect to another scheme are reported clearly.
Server errors (5xx) and connection failures are retried with exponential backoff; client errors (4xx),
a read timeout and a body over the node's size cap are not. Whatever fails, the folder is removed.

An optional `Checksum` param (`sha256:<hex>`, or 64 hex digits) is checked against the bytes as they
stream in; a mismatch fails the input before the file is renamed into place (Bacalhau has no such
param; we add it because a URL says where data is, not what it is).

With the node's input cache (input_cache.py), an entry is kept per URL when the server names a
validator (ETag, else Last-Modified), and every later staging revalidates it with a conditional GET:
304 stages the cached file (no body transferred), 200 downloads again and replaces the entry. A URL whose
server gives neither validator is not cached. A job's `Checksum` matching the cached file's SHA-256 is
a hit with no request at all: the job named the bytes it wants, and those are them.
"""

from __future__ import annotations

import asyncio
import email.message
import hashlib
import logging
import os
import posixpath
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO
from urllib.parse import unquote, urlsplit, urlunsplit

import httpx

from bacalhau.compute.storage.base import PreparedInput, input_name
from bacalhau.compute.storage.input_cache import CacheClaim, InputCache
from bacalhau.compute.storage.workdir import staging_folder
from bacalhau.locality.keys import url_key
from bacalhau.models.errors import StorageError
from bacalhau.models.job import InputSource

SUPPORTED_SCHEMES = ("http", "https")
DEFAULT_FILENAME = "download"
_CHUNK_BYTES = 1 << 20
_MAX_BACKOFF_S = 30.0
# How a cache entry's validator is stored: the header it came from, then its value.
_ETAG, _LAST_MODIFIED = "etag:", "last-modified:"

logger = logging.getLogger(__name__)


class _Retryable(Exception):
    """An attempt failed in a way worth trying again (5xx, connection trouble)."""


@dataclass(frozen=True)
class _Fetched:
    """How a download ended: `not_modified` (a conditional GET answered 304: nothing saved), or saved with
    the response's validator ('' when it had none) and the body's SHA-256."""

    not_modified: bool = False
    validator: str = ""
    sha256: str = ""


def expected_sha256(source: InputSource) -> str | None:
    """The lower-case hex SHA-256 the `Checksum` param asks for, None when unset.

    Raises StorageError for a value that is neither `sha256:<64 hex>` nor 64 hex digits.
    """
    raw = source.source.param("Checksum")
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return None
    text = str(raw).strip().lower()
    algorithm, sep, digest = text.partition(":")
    if not sep:
        algorithm, digest = "sha256", text
    if algorithm != "sha256" or len(digest) != 64 or any(ch not in "0123456789abcdef" for ch in digest):
        raise StorageError(
            f"urlDownload input {input_name(source)!r} has an invalid Checksum {raw!r}",
            hint="write it as sha256:<64 hex digits>",
        )
    return digest


class UrlStorage:
    """Stages `urlDownload` inputs: downloads the URL into a private copy that cleanup deletes."""

    def __init__(
        self,
        *,
        read_timeout_s: float,
        max_retries: int,
        max_bytes: int,
        max_redirects: int = 10,
        retry_backoff_s: float = 1.0,
        cache: InputCache | None = None,
    ) -> None:
        """`cache`, when given, keeps what was downloaded for the next staging of the same URL."""
        self._cache = cache
        self._read_timeout_s = read_timeout_s
        self._max_retries = max(0, max_retries)
        self._max_bytes = max_bytes
        self._max_redirects = max(0, max_redirects)
        self._retry_backoff_s = retry_backoff_s

    def is_installed(self) -> bool:
        """Downloading needs nothing but the network."""
        return True

    def validate(self, source: InputSource) -> None:
        """Raise StorageError when the URL is missing or is not an http(s) URL with a host, or the Checksum is malformed."""
        self._url(source)
        expected_sha256(source)

    async def prepare(self, source: InputSource, work_dir: Path) -> PreparedInput:
        """Download the URL into a fresh numbered folder of `work_dir`; return that folder."""
        url = self._url(source)
        async with staging_folder(work_dir) as folder:
            if self._cache is None:
                await self._download_with_retries(source, url, folder)
            else:
                async with self._cache.claim(url_key(url), label=redact(url)) as claim:
                    await self._stage_through(claim, source, url, folder)
        # The folder is what is mounted: the file appears at <Target>/<name>, as in Bacalhau.
        return PreparedInput(source=source, host_path=folder, read_only=True, owned=True)

    async def cleanup(self, prepared: PreparedInput) -> None:
        """Delete the numbered folder `prepare` made. Idempotent."""
        if prepared.owned:
            await asyncio.to_thread(shutil.rmtree, prepared.host_path, True)

    async def has_locally(self, source: InputSource) -> bool:
        """True when the input cache holds an entry for the URL; asks the server nothing, so the entry is
        only believed fresh: staging revalidates it (and downloads again if the content changed)."""
        if self._cache is None:
            return False
        try:
            url = self._url(source)
        except StorageError:
            return False
        return self._cache.contains(url_key(url))

    async def _stage_through(self, claim: CacheClaim, source: InputSource, url: str, folder: Path) -> None:
        """Stage via the cache: revalidate the claimed entry, stage it on a hit, else download and store."""
        entry, wanted = claim.entry, expected_sha256(source)
        if entry is not None and wanted is not None and entry.sha256 == wanted:
            await claim.hit(folder)
            return
        scratch = await claim.scratch(fallback=folder)
        fetched = await self._download_with_retries(source, url, scratch, validator=entry.validator if entry else "")
        if fetched.not_modified and entry is not None:
            if wanted is not None and entry.sha256 != wanted:
                raise _mismatch(input_name(source), url, wanted, entry.sha256)
            await claim.hit(folder)
            return
        if not fetched.validator:
            logger.debug("not caching %s: the server sent neither an ETag nor a Last-Modified header", redact(url))
        await claim.store(scratch, folder, validator=fetched.validator, sha256=fetched.sha256)

    def _url(self, source: InputSource) -> str:
        url = source.source.param("URL")
        if not isinstance(url, str) or not url.strip():
            raise StorageError(
                f"urlDownload input {input_name(source)!r} has no URL",
                hint="set Source.Params.URL to an http:// or https:// URL",
            )
        url = url.strip()
        parts = urlsplit(url)
        if parts.scheme.lower() not in SUPPORTED_SCHEMES:
            raise StorageError(
                f"urlDownload input {input_name(source)!r} has an unsupported URL scheme "
                f"{parts.scheme or '(none)'!r} in {redact(url)}",
                hint="only http:// and https:// URLs can be downloaded",
            )
        if not parts.hostname:
            raise StorageError(f"urlDownload input {input_name(source)!r} has a URL without a host: {redact(url)}")
        return url

    async def _download_with_retries(
        self, source: InputSource, url: str, folder: Path, *, validator: str = ""
    ) -> _Fetched:
        """Download into `folder`, conditionally on `validator` (an entry's) when given."""
        # A ReadTimeout of 0 (or less) means no timeout, as for Go's http.Client.
        timeout = httpx.Timeout(self._read_timeout_s if self._read_timeout_s > 0 else None)
        async with httpx.AsyncClient(timeout=timeout, follow_redirects=False, trust_env=True) as client:
            attempt = 0
            while True:
                try:
                    return await self._attempt(client, source, url, folder, _conditional_headers(validator))
                except _Retryable as exc:
                    if attempt >= self._max_retries:
                        # Unreachable or failing server (5xx): maybe this node's network, not the job's
                        # URL: retryable, so the orchestrator may try another node.
                        raise StorageError(
                            f"urlDownload input {input_name(source)!r} could not download {redact(url)} "
                            f"after {attempt + 1} attempts: {exc}",
                            retryable=True,
                        ) from exc
                    await asyncio.sleep(min(self._retry_backoff_s * (2**attempt), _MAX_BACKOFF_S))
                    attempt += 1

    async def _attempt(
        self, client: httpx.AsyncClient, source: InputSource, url: str, folder: Path, headers: dict[str, str]
    ) -> _Fetched:
        name = input_name(source)
        seen: set[str] = set()
        current = url
        for _hop in range(self._max_redirects + 1):
            seen.add(current)
            try:
                async with client.stream("GET", current, headers=headers) as response:
                    # Before the redirect check: httpx counts every 3xx, 304 included, as a redirect.
                    if response.status_code == 304 and headers:
                        return _Fetched(not_modified=True)
                    if response.is_redirect:
                        location = response.headers.get("location", "")
                        next_url = str(response.url.join(location))
                        if urlsplit(next_url).scheme.lower() not in SUPPORTED_SCHEMES:
                            raise StorageError(
                                f"urlDownload input {name!r}: {redact(current)} redirects to an unsupported "
                                f"URL {redact(next_url)}"
                            )
                        if next_url in seen:
                            raise StorageError(
                                f"urlDownload input {name!r}: redirect loop downloading {redact(url)} "
                                f"(back to {redact(next_url)})"
                            )
                        current = next_url
                        continue
                    if 400 <= response.status_code < 500:
                        raise StorageError(
                            f"urlDownload input {name!r}: {redact(current)} returned HTTP {response.status_code} "
                            f"{response.reason_phrase}".rstrip()
                        )
                    if response.status_code >= 500:
                        raise _Retryable(f"HTTP {response.status_code} {response.reason_phrase}".rstrip())
                    if not 200 <= response.status_code < 300:
                        raise StorageError(
                            f"urlDownload input {name!r}: {redact(current)} returned unexpected "
                            f"HTTP {response.status_code}"
                        )
                    sha256 = await self._save(response, name, current, folder, expected_sha256(source))
                    return _Fetched(validator=_validator(response.headers), sha256=sha256)
            except httpx.ReadTimeout as exc:
                raise StorageError(
                    f"urlDownload input {name!r}: reading {redact(current)} timed out after "
                    f"{self._read_timeout_s:g}s with no data (InputSources.ReadTimeout)"
                ) from exc
            except httpx.TransportError as exc:
                raise _Retryable(f"{type(exc).__name__}: {exc or 'connection failed'}") from exc
            except (httpx.HTTPError, httpx.InvalidURL) as exc:
                raise StorageError(f"urlDownload input {name!r}: downloading {redact(current)} failed: {exc}") from exc
            except OSError as exc:
                raise StorageError(f"urlDownload input {name!r}: could not save {redact(current)}: {exc}") from exc
        raise StorageError(
            f"urlDownload input {name!r}: too many redirects downloading {redact(url)} "
            f"(more than {self._max_redirects})"
        )

    async def _save(self, response: httpx.Response, name: str, url: str, folder: Path, sha256_hex: str | None) -> str:
        """Save the body under its file name in `folder`; return its SHA-256 (hex)."""
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self._max_bytes:
            raise self._too_large(name, url, int(declared))
        filename = filename_for(response.headers.get("content-disposition", ""), str(response.url))
        out, tmp = await asyncio.to_thread(_open_temp, folder)
        # Hashed always (in the writing thread, off the event loop): the cache keys Checksum hits by it.
        digest = hashlib.sha256()
        try:
            size = 0
            try:
                async for chunk in response.aiter_bytes(_CHUNK_BYTES):
                    size += len(chunk)
                    if size > self._max_bytes:
                        raise self._too_large(name, url, None)
                    await asyncio.to_thread(_write_hashed, out, digest, chunk)
            finally:
                await asyncio.to_thread(out.close)
            if sha256_hex is not None and digest.hexdigest() != sha256_hex:
                raise _mismatch(name, url, sha256_hex, digest.hexdigest())
            await asyncio.to_thread(tmp.replace, folder / filename)
        except BaseException:
            await asyncio.to_thread(tmp.unlink, True)
            raise
        return digest.hexdigest()

    def _too_large(self, name: str, url: str, declared: int | None) -> StorageError:
        size = f"{declared} bytes" if declared is not None else f"more than {self._max_bytes} bytes"
        return StorageError(
            f"urlDownload input {name!r}: {redact(url)} is larger than the node's limit "
            f"({size} > {self._max_bytes} bytes)",
            hint="raise InputSources.MaxDownloadBytes in the compute node's config",
        )


def _conditional_headers(validator: str) -> dict[str, str]:
    """The request headers revalidating an entry fetched under `validator` (none for '')."""
    if validator.startswith(_ETAG):
        return {"If-None-Match": validator.removeprefix(_ETAG)}
    if validator.startswith(_LAST_MODIFIED):
        return {"If-Modified-Since": validator.removeprefix(_LAST_MODIFIED)}
    return {}


def _validator(headers: httpx.Headers) -> str:
    """What identifies this version of the content: the ETag, else Last-Modified, else ''."""
    etag, modified = str(headers.get("etag", "")).strip(), str(headers.get("last-modified", "")).strip()
    if etag:
        return _ETAG + etag
    return _LAST_MODIFIED + modified if modified else ""


def _mismatch(name: str, url: str, expected: str, actual: str) -> StorageError:
    return StorageError(
        f"urlDownload input {name!r}: checksum mismatch for {redact(url)}: expected sha256 {expected}, got {actual}",
        hint="the data at the URL changed, or the Checksum param is wrong",
    )


def _write_hashed(out: BinaryIO, digest: hashlib._Hash, chunk: bytes) -> None:
    digest.update(chunk)  # hashlib releases the GIL on large buffers: this overlaps the network read
    out.write(chunk)


def _open_temp(folder: Path) -> tuple[BinaryIO, Path]:
    """A new hidden temporary file in `folder`, open for writing, and its path."""
    fd, name = tempfile.mkstemp(prefix=".download-", suffix=".part", dir=folder)
    return os.fdopen(fd, "wb"), Path(name)


def filename_for(content_disposition: str, url: str) -> str:
    """The file name a download is saved under: Content-Disposition's, else the URL's basename, else `download`."""
    if content_disposition:
        message = email.message.Message()
        message["content-disposition"] = content_disposition
        candidate = safe_filename(message.get_filename() or "")
        if candidate:
            return candidate
    return safe_filename(unquote(posixpath.basename(urlsplit(url).path))) or DEFAULT_FILENAME


def safe_filename(name: str) -> str:
    """A single path segment made from a server-supplied name ('' when nothing usable is left)."""
    name = name.replace("\\", "/").replace("\x00", "")
    base = posixpath.basename(name.rstrip("/")).strip()
    if base in ("", ".", ".."):
        return ""
    return base


def redact(url: str) -> str:
    """The URL with any password in it replaced, for error messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    netloc = f"{parts.username or ''}:***@{host}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
