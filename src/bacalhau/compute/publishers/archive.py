"""The results archive every archiving publisher produces: a tar.gz of an execution's results folder.

Entries sit at the top of the archive (`stdout`, `stderr`, `exitCode`, `outputs/...`), so `job get`
merges them straight into its output folder whichever publisher made the archive. The gzip header
carries no time or name, so the same results always pack to the same bytes: republishing an execution
gives an identical object (same checksum, no new S3 version content).
"""

from __future__ import annotations

import gzip
import os
import tarfile
import uuid
from pathlib import Path


def write_archive(results_dir: Path, target: Path) -> None:
    """Pack `results_dir` into the gzip tarball `target`, atomically (a temporary name, then a rename).

    Raises OSError or tarfile.TarError; no temporary file is left behind either way.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
    try:
        with (
            tmp.open("wb") as raw,
            gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as packed,
            tarfile.open(fileobj=packed, mode="w") as archive,
        ):
            for child in sorted(results_dir.iterdir()):
                archive.add(child, arcname=child.name)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
