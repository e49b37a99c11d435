"""The `inline` input source: content carried in the job spec itself as a `data:` URL.

`bacalhau wasm run ./main.wasm` uploads a local file this way. The URL is decoded into
`<work_dir>/<n>/<basename of target>`, or, on a node (with an InlineStore), once per content into a copy
that the executions using it share read-only; a gzipped tarball (`data:application/gzip;base64,...`, how
Bacalhau's CLI inlines a directory) is unpacked into a private directory at the first place.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import io
import posixpath
import re
import shutil
import tarfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote_to_bytes

from bacalhau.compute.storage.base import PreparedInput, input_name
from bacalhau.compute.storage.inline_store import InlineStore, inline_key
from bacalhau.compute.storage.workdir import fresh_numbered_dir, remove_staged
from bacalhau.models.errors import StorageError
from bacalhau.models.job import InputSource
from bacalhau.models.task_path import resolve_task_path

# The media type Bacalhau's CLI uses when it inlines a whole directory as a tar.gz.
GZIP_MEDIA_TYPE = "application/gzip"
# Up to this many characters a URL is decoded on the event loop when a bid is validated (well under a
# millisecond); a longer one gets only a linear check in C there, and is decoded in a worker thread
# when it is staged: percent-decoding 8 MB takes over a second of pure Python.
DECODE_ON_LOOP_CHARS = 64 * 1024
# What base64 data may hold, percent-escapes and white space included (see parse_data_url).
_BASE64_TEXT = re.compile(r"[A-Za-z0-9+/=_%\s-]*")


@dataclass(frozen=True)
class DataURL:
    """A decoded `data:` URL: its media type (without parameters) and its bytes."""

    media_type: str
    data: bytes


def parse_data_url(url: str) -> DataURL:
    """Decode `data:[<media type>][;base64],<data>` (RFC 2397); raise ValueError saying what is wrong."""
    text = url.strip()
    if not text[:5].lower() == "data:":
        raise ValueError("not a data URL (it must start with 'data:')")
    header, sep, payload = text[5:].partition(",")
    if not sep:
        raise ValueError("a data URL needs a ',' between its header and its data")
    parts = [p.strip() for p in header.split(";")]
    is_base64 = len(parts) > 1 and parts[-1].lower() == "base64"
    media_type = parts[0].lower() or "text/plain"
    if not is_base64:
        return DataURL(media_type, unquote_to_bytes(payload))
    # Percent-escapes and white space may appear inside base64 data that went through a URL or a YAML file.
    compact = "".join(unquote_to_bytes(payload).decode("ascii", errors="replace").split())
    compact += "=" * (-len(compact) % 4)
    try:
        alphabet = b"-_" if ("-" in compact or "_" in compact) else None
        return DataURL(media_type, base64.b64decode(compact, altchars=alphabet, validate=True))
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"invalid base64 data: {exc}") from exc


class InlineStorage:
    """Stages `inline` inputs: decodes the data URL into a copy shared read-only by every execution with the
    same content (with a `store`, see inline_store.py), or else into a private copy that cleanup deletes."""

    def __init__(self, store: InlineStore | None = None) -> None:
        self._store = store
        self._leases: set[object] = set()  # shared copies staged and not cleaned up yet

    def is_installed(self) -> bool:
        """Inline content needs nothing from the node."""
        return True

    def validate(self, source: InputSource) -> None:
        """Raise StorageError when the URL is missing or is not a data URL. Short URLs are decoded;
        long ones only checked in linear time (their base64 errors, if any, fail `prepare`)."""
        url = self._url(source)
        if len(url) <= DECODE_ON_LOOP_CHARS:
            self._decode(source, url)
            return
        header, sep, payload = url.strip()[5:].partition(",")
        if url.strip()[:5].lower() != "data:" or not sep:
            self._decode(source, url[:DECODE_ON_LOOP_CHARS])  # the same message as a short URL gets
        if header.strip().lower().endswith("base64") and not _BASE64_TEXT.fullmatch(payload):
            raise StorageError(
                f"inline input {input_name(source)!r} has an invalid data URL: invalid base64 data",
                hint="use data:[<media type>][;base64],<data>",
            )

    async def prepare(self, source: InputSource, work_dir: Path) -> PreparedInput:
        """Write the decoded content under a fresh numbered folder of `work_dir`; return its path.

        A short URL is staged on the event loop, as validate() decodes it there: a thread hop (and the
        wait for the GIL behind a busy loop) cost a trivial job milliseconds. A long one is decoded and
        written in a worker thread: a spec may carry megabytes inline."""
        url = self._url(source)
        if self._store is not None and not _is_archive(url):
            # The decoded content is never longer than its URL: the bound is checked before decoding.
            name = _staged_name(source.target)
            shared = await self._store.acquire(inline_key(url, name), len(url),
                                               lambda folder: self._write_shared(source, url, folder / name))
            if shared is not None:
                lease = object()
                self._leases.add(lease)
                return PreparedInput(source=source, host_path=shared, read_only=True, owned=False, shared=True,
                                     lease=lease)
        if len(url) <= DECODE_ON_LOOP_CHARS:
            return self._stage(source, url, work_dir)
        return await asyncio.to_thread(self._stage, source, url, work_dir)

    async def cleanup(self, prepared: PreparedInput) -> None:
        """Delete the numbered folder `prepare` made, or let go of the shared copy. Idempotent.

        A single file (no archive unpacked) goes on the event loop, as short URLs are staged there; a
        folder an archive was unpacked into goes in a thread (workdir.remove_staged)."""
        if prepared.owned:
            await remove_staged(prepared.host_path.parent, prepared.host_path)
        elif prepared.lease in self._leases and self._store is not None:
            self._leases.discard(prepared.lease)
            self._store.release(prepared.host_path)

    async def has_locally(self, source: InputSource) -> bool:
        """Always: the data travels inside the job itself."""
        return True

    def _url(self, source: InputSource) -> str:
        url = source.source.param("URL")
        if not isinstance(url, str) or not url.strip():
            raise StorageError(
                f"inline input {input_name(source)!r} has no URL",
                hint="set Source.Params.URL to a data: URL such as data:text/plain;base64,aGVsbG8=",
            )
        return url

    async def _write_shared(self, source: InputSource, url: str, path: Path) -> Path:
        """Decode `url` into the new file `path` (its folder made too): on the loop when short, as `prepare`.

        A long one is written in a thread that a cancellation cannot stop: the cancelled caller waits for
        it (as long as decoding takes) so that the store removes a folder nobody writes to any more."""
        if len(url) <= DECODE_ON_LOOP_CHARS:
            return self._stage_file(source, url, path)
        writing = asyncio.ensure_future(asyncio.to_thread(self._stage_file, source, url, path))
        try:
            return await asyncio.shield(writing)
        except asyncio.CancelledError:
            await asyncio.wait([writing])
            raise

    def _stage_file(self, source: InputSource, url: str, path: Path) -> Path:
        decoded = self._decode(source, url)
        try:
            path.parent.mkdir(parents=True)
            path.write_bytes(decoded.data)
        except OSError as exc:
            raise StorageError(f"inline input {input_name(source)!r} could not be staged: {exc}") from exc
        return path

    def _stage(self, source: InputSource, url: str, work_dir: Path) -> PreparedInput:
        return self._write(source, self._decode(source, url), work_dir)

    def _decode(self, source: InputSource, url: str) -> DataURL:
        try:
            return parse_data_url(url)
        except ValueError as exc:
            raise StorageError(
                f"inline input {input_name(source)!r} has an invalid data URL: {exc}",
                hint="use data:[<media type>][;base64],<data>",
            ) from exc

    def _write(self, source: InputSource, decoded: DataURL, work_dir: Path) -> PreparedInput:
        folder = fresh_numbered_dir(work_dir)
        host_path = folder / _staged_name(source.target)
        try:
            if decoded.media_type == GZIP_MEDIA_TYPE:
                host_path.mkdir()
                with tarfile.open(fileobj=io.BytesIO(decoded.data), mode="r:gz") as archive:
                    # The "data" filter refuses absolute paths, `..`, links out of the folder and devices.
                    archive.extractall(host_path, filter="data")
            else:
                host_path.write_bytes(decoded.data)
        except (OSError, tarfile.TarError) as exc:
            shutil.rmtree(folder, ignore_errors=True)  # leave no partial files behind
            raise StorageError(f"inline input {input_name(source)!r} could not be staged: {exc}") from exc
        return PreparedInput(source=source, host_path=host_path, read_only=True, owned=True)


def _is_archive(url: str) -> bool:
    """Whether the URL carries a directory (a gzipped tarball, unpacked when staged): those stay private,
    as their unpacked size is unknown until then."""
    header = url[:max(url.find(","), 0)].strip()[5:]  # the header only: the URL may be megabytes long
    return header.split(";")[0].strip().lower() == GZIP_MEDIA_TYPE


def _staged_name(target: str) -> str:
    """The staged file's name: the last component of where the target lands (`data/.` -> `data`)."""
    try:
        return posixpath.basename(resolve_task_path(target)) or "input"
    except ValueError:  # refused by validation before any staging; a plain name keeps this total
        return "input"
