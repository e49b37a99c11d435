"""Unpacking published results into one folder, Bacalhau's `job get` layout (CONTRACT.md section 4.4).

Each execution's result archive (a .tar.gz of its results folder: `stdout`, `stderr`, `exitCode` and one
folder per ResultPath) is unpacked into a staging folder and merged into the output folder:

    archive 1 --unpack--> staging --merge--> output_dir/{stdout,stderr,exitCode,<result name>/...}
    archive 2 --unpack--> staging --merge--> stdout/stderr appended; any other clash is an error

With `raw`, each archive is unpacked as is under `output_dir/raw/<name>/` instead. Files that were in
the output folder before the download are never overwritten unless asked, and archive members that
would land outside the folder (absolute paths, `..`, links pointing out, devices) are refused.
"""

from __future__ import annotations

import os
import shutil
import tarfile
import tempfile
from pathlib import Path

from bacalhau.models import constants as c
from bacalhau.models.errors import BacalhauError, ErrorCode

APPENDED_FILES = (c.RESULT_STDOUT, c.RESULT_STDERR)
RAW_FOLDER = "raw"


class ResultMerger:
    """Merges unpacked result archives into `output_dir`, remembering which files it wrote."""

    def __init__(self, output_dir: Path, *, raw: bool = False, overwrite: bool = False) -> None:
        self.output_dir = output_dir
        self.raw = raw
        self.overwrite = overwrite
        self._written: set[Path] = set()

    def add(self, archive: Path, name: str) -> None:
        """Unpack one result archive and merge it in (or place it under raw/<name>)."""
        self.output_dir.mkdir(parents=True, exist_ok=True)
        if self.raw:
            dest = self._fresh_raw_folder(name)
            dest.mkdir(parents=True)
            safe_extract(archive, dest)
            return
        with tempfile.TemporaryDirectory(prefix=".bacalhau-unpack-", dir=self.output_dir) as staging:
            root = _content_root(Path(staging), archive)
            self._merge_tree(root)

    def add_tree(self, folder: Path, name: str) -> None:
        """Merge one result that arrived as a folder (IPFS, plain S3) in (or copy it to raw/<name>)."""
        _refuse_escaping_links(folder)
        self.output_dir.mkdir(parents=True, exist_ok=True)
        if self.raw:
            dest = self._fresh_raw_folder(name)
            # symlinks=True: a link is copied as a link, never followed out of the result.
            shutil.copytree(folder, dest, symlinks=True)
            return
        self._merge_tree(folder)

    def _fresh_raw_folder(self, name: str) -> Path:
        """`raw/<name>`, cleared if it exists and overwriting is allowed (else refused); not yet created."""
        dest = self.output_dir / RAW_FOLDER / name
        if dest.exists() and not self.overwrite:
            raise _exists_error(dest)
        if dest.exists():
            shutil.rmtree(dest)
        return dest

    def _merge_tree(self, root: Path) -> None:
        self._check_no_overwrite(root)
        for dirpath, dirnames, filenames in os.walk(root):
            rel_dir = Path(dirpath).relative_to(root)
            for dirname in dirnames:
                target = self.output_dir / rel_dir / dirname
                if target.exists() and not target.is_dir():
                    raise _clash_error(target)
                target.mkdir(exist_ok=True)
            for filename in filenames:
                self._merge_file(Path(dirpath) / filename, self.output_dir / rel_dir / filename, rel_dir)

    def _check_no_overwrite(self, root: Path) -> None:
        """Refuse before writing anything, so a refused download leaves the folder exactly as it was."""
        if self.overwrite:
            return
        for dirpath, _dirnames, filenames in os.walk(root):
            rel_dir = Path(dirpath).relative_to(root)
            for filename in filenames:
                target = self.output_dir / rel_dir / filename
                if target not in self._written and (target.exists() or target.is_symlink()):
                    raise _exists_error(target)

    def _merge_file(self, source: Path, target: Path, rel_dir: Path) -> None:
        top_level = rel_dir == Path(".")
        if target in self._written:
            if top_level and target.name in APPENDED_FILES:
                with source.open("rb") as src, target.open("ab") as dst:
                    shutil.copyfileobj(src, dst)
                return
            if top_level and target.name == c.RESULT_EXIT_CODE:
                # Several executions: keep a non-zero exit code visible rather than the last one.
                if target.read_text(errors="replace").strip() in ("", "0"):
                    shutil.copyfile(source, target)
                return
            raise _clash_error(target)
        if (target.exists() or target.is_symlink()) and not self.overwrite:
            raise _exists_error(target)
        if target.is_dir():
            raise _clash_error(target)
        shutil.copyfile(source, target)
        self._written.add(target)


def safe_extract(archive: Path, dest: Path) -> None:
    """Extract a tar (any compression) into `dest`, refusing members that would escape it."""
    try:
        with tarfile.open(archive, mode="r:*") as tar:
            members = tar.getmembers()
            for member in members:
                _check_member(member, dest)
            # The "data" filter repeats these checks in the stdlib and drops unsafe modes.
            tar.extractall(dest, members=members, filter="data")
    except tarfile.TarError as exc:
        raise BacalhauError(
            f"the downloaded result {archive.name} is not a valid tar archive: {exc}",
            code=ErrorCode.IOError,
            component="Downloader",
            hint="the publisher may have served an error page; check the result URL with 'bacalhau job describe'",
        ) from exc


def _check_member(member: tarfile.TarInfo, dest: Path) -> None:
    name = member.name
    resolved_dest = dest.resolve()
    target = (resolved_dest / name).resolve()
    escapes = name.startswith("/") or ".." in Path(name).parts or not _inside(target, resolved_dest)
    if not escapes and (member.issym() or member.islnk()):
        base = target.parent if member.issym() else resolved_dest
        link = member.linkname
        escapes = link.startswith("/") or not _inside((base / link).resolve(), resolved_dest)
    if escapes:
        raise BacalhauError(
            f"refusing to unpack result archive member {name!r}: it points outside the output folder",
            code=ErrorCode.IOError,
            component="Downloader",
            hint="the result archive is malformed or malicious; it was not unpacked",
        )
    if not (member.isfile() or member.isdir() or member.issym() or member.islnk()):
        raise BacalhauError(
            f"refusing to unpack result archive member {name!r}: only files and folders are allowed",
            code=ErrorCode.IOError,
            component="Downloader",
        )


def _refuse_escaping_links(folder: Path) -> None:
    """Refuse a downloaded folder holding a symlink that points outside it (it would copy host files)."""
    root = folder.resolve()
    for dirpath, dirnames, filenames in os.walk(folder):
        for entry in (*dirnames, *filenames):
            path = Path(dirpath) / entry
            if path.is_symlink() and not _inside(path.resolve(), root):
                raise BacalhauError(
                    f"refusing to merge result entry {path.relative_to(folder)}: it links outside the result",
                    code=ErrorCode.IOError,
                    component="Downloader",
                    hint="the published result is malformed or malicious; nothing was merged",
                )


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def _content_root(staging: Path, archive: Path) -> Path:
    """Unpack and return the folder holding the results (archives may wrap them in one folder)."""
    safe_extract(archive, staging)
    entries = [p for p in staging.iterdir()]
    markers = {c.RESULT_STDOUT, c.RESULT_STDERR, c.RESULT_EXIT_CODE}
    if len(entries) == 1 and entries[0].is_dir() and not entries[0].is_symlink():
        inner = {p.name for p in entries[0].iterdir()}
        if inner & markers:
            return entries[0]
    return staging


def _exists_error(path: Path) -> BacalhauError:
    return BacalhauError(
        f"refusing to overwrite existing file {path}",
        code=ErrorCode.IOError,
        component="Downloader",
        hint="pass --overwrite to replace it, or choose another folder with --output-dir",
    )


def _clash_error(path: Path) -> BacalhauError:
    return BacalhauError(
        f"results of several executions both contain {path}; they cannot be merged",
        code=ErrorCode.IOError,
        component="Downloader",
        hint="use --raw to keep each execution's results in its own folder",
    )
