"""The multipart body of Kubo's `/api/v0/add`, written the way Kubo's own client writes it.

Kubo's client (boxo/files MultiFileReader) sends one flat multipart/form-data body, one part per file
system entry, each directory before its children:

    --<boundary>
    Content-Disposition: form-data; name="file"; filename="results%2Fsub%2Fdata.csv"
    Content-Type: application/octet-stream          (application/x-directory, application/symlink)

    <file bytes | nothing for a directory | the link target>

`filename` is the entry's path below the added root's parent, escaped with Go's url.QueryEscape ("/"
becomes %2F, " " becomes +), and the server rebuilds the tree from those paths. We send no `abspath`
header: Kubo only reads it for `--nocopy` adds, and it would reveal local paths to the server.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import quote_plus

EntryKind = Literal["file", "directory", "symlink"]
CONTENT_TYPES: dict[EntryKind, str] = {
    "file": "application/octet-stream",
    "directory": "application/x-directory",
    "symlink": "application/symlink",
}
CHUNK_BYTES = 256 * 1024


@dataclass(frozen=True)
class Entry:
    """One part of the body: `name` is the slash path of the entry, starting with the root's name."""

    name: str
    kind: EntryKind
    path: Path


def walk_entries(root: Path) -> list[Entry]:
    """The entries under (and including) `root`, each directory before its children, names sorted. Blocking."""
    entries: list[Entry] = []

    def visit(path: Path, name: str) -> None:
        if path.is_symlink():
            entries.append(Entry(name, "symlink", path))
        elif path.is_dir():
            entries.append(Entry(name, "directory", path))
            with os.scandir(path) as children:
                names = sorted(child.name for child in children)
            for child in names:
                visit(path / child, f"{name}/{child}")
        else:
            entries.append(Entry(name, "file", path))

    visit(root, root.name)
    return entries


def new_boundary() -> str:
    """A random boundary, too long to occur inside any part by chance."""
    return secrets.token_hex(16)


def content_type(boundary: str) -> str:
    """The request's Content-Type header for `boundary`."""
    return f"multipart/form-data; boundary={boundary}"


def part_header(entry: Entry, boundary: str) -> bytes:
    """The boundary line and headers that open the part of `entry`."""
    filename = quote_plus(entry.name, safe="")  # Go's url.QueryEscape
    return (
        f"--{boundary}\r\n"
        f'Content-Disposition: form-data; name="file"; filename="{filename}"\r\n'
        f"Content-Type: {CONTENT_TYPES[entry.kind]}\r\n\r\n"
    ).encode()


async def encode_entries(entries: list[Entry], boundary: str) -> AsyncIterator[bytes]:
    """The body, streamed: file contents are read in CHUNK_BYTES pieces off the event loop."""
    for entry in entries:
        yield part_header(entry, boundary)
        if entry.kind == "symlink":
            yield os.fsencode(await asyncio.to_thread(os.readlink, entry.path))
        elif entry.kind == "file":
            handle = await asyncio.to_thread(entry.path.open, "rb")
            try:
                while chunk := await asyncio.to_thread(handle.read, CHUNK_BYTES):
                    yield chunk
            finally:
                await asyncio.to_thread(handle.close)
        yield b"\r\n"
    yield f"--{boundary}--\r\n".encode()
