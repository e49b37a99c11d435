"""Unpacking the tar stream of Kubo's `/api/v0/get`: one root entry, named by the CID.

    <cid>            a file CID: one regular file
    <cid>/...        a directory CID: the directory and everything below it

Extraction uses tarfile's "data" filter: no absolute paths, no `..`, no links leaving the archive,
no device files, sane permissions -- the archive comes from a server, not from us.
"""

from __future__ import annotations

import os
import tarfile
from pathlib import Path

from bacalhau.models.errors import StorageError


def unpack_single_root(archive: Path, into: Path, target: Path, *, cid: str) -> None:
    """Extract `archive` under the empty folder `into` and move its one root entry to `target`. Blocking."""
    if not hasattr(tarfile, "data_filter"):  # added in 3.11.4; unfiltered extraction is not an option
        raise StorageError("fetching from a Kubo RPC API needs Python 3.11.4 or newer (tarfile filters)")
    try:
        with tarfile.open(archive, mode="r:") as tar:
            roots = {Path(member.name).parts[0] for member in tar.getmembers() if Path(member.name).parts}
            tar.extractall(into, filter="data")
    except (tarfile.TarError, OSError) as exc:
        raise StorageError(f"the archive of {cid} from Kubo is unreadable: {exc}", details={"cid": cid}) from exc
    if len(roots) != 1:
        raise StorageError(
            f"the archive of {cid} from Kubo has {len(roots)} top-level entries, expected 1", details={"cid": cid}
        )
    os.rename(into / roots.pop(), target)
