"""The task's filesystem as a WASI module sees it, and how names in it resolve to host files.

WASI grants access through preopened *directories* only. Directory inputs and outputs are preopened at
their targets directly. A file input (an inline source staged as a file, the .wasm module itself) must
appear at its exact target, so file inputs are gathered per parent directory into a private view
directory (hard links, or copies where linking is impossible) that is preopened at that parent.
A relative target (`main.wasm`, how Bacalhau's own jobs write it) starts at `/`, as in Bacalhau's
mountfs; see models/task_path.py.

    inputs: /data (dir, ro)   /main.wasm (file)   /cfg/a.json (file)     outputs: /outputs
    preopens:  /data     -> host dir of the input           (read-only)
               /         -> <view>/0/ {main.wasm}           (read-only)
               /cfg      -> <view>/1/ {a.json}              (read-only)
               /outputs  -> host results folder             (writable)

wasi-libc picks the preopen with the longest matching prefix, so `/data/x` is served by `/data`, not
`/`. A file whose parent is itself a directory mount is rejected: two preopens at one path would hide
each other. Writable views hold hard links, so in-place writes to a read-write file input reach the
staged file; a file replaced by rename stays in the view, which is removed after the run.
"""

from __future__ import annotations

import contextlib
import posixpath
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from bacalhau.compute.executors.base import MountedInput, MountedOutput
from bacalhau.models.errors import ExecutionError
from bacalhau.models.task_path import resolve_task_path


def guest_path(path: str) -> str:
    """Where a target or module name lands in the guest: relative names start at `/`, as in Bacalhau's
    mountfs (`main.wasm` is `/main.wasm`). Raises ValueError when `..` climbs above `/`."""
    return resolve_task_path(path)


@dataclass(frozen=True)
class Preopen:
    """One WASI preopen: `host_path` appears at `guest_path`, writable or not."""

    host_path: Path
    guest_path: str
    writable: bool


class TaskFilesystem:
    """Preopens for one execution plus resolution of module names; use `build` as a context manager."""

    def __init__(self, inputs: list[MountedInput], preopens: list[Preopen]) -> None:
        self.inputs = inputs
        self.preopens = preopens

    @classmethod
    @contextlib.contextmanager
    def build(cls, inputs: list[MountedInput], outputs: list[MountedOutput]) -> Iterator[TaskFilesystem]:
        """Lay out the preopens; remove the view directory afterwards. Raises ExecutionError."""
        view_root: Path | None = None
        try:
            try:
                preopens, files_by_parent = _directory_preopens(inputs, outputs)
                preopens += _in_place(files_by_parent)
                if files_by_parent:
                    view_root = Path(tempfile.mkdtemp(prefix="bacalhau-wasm-view-"))
                    preopens += _file_views(view_root, files_by_parent)
            except OSError as exc:
                raise ExecutionError(f"could not lay out the task filesystem: {exc}") from exc
            yield cls(inputs, preopens)
        finally:
            if view_root is not None:
                shutil.rmtree(view_root, ignore_errors=True)

    def input_targets(self) -> list[str]:
        """Input targets, for error messages that list what the task can see."""
        return [entry.target for entry in self.inputs]

    def find_module(self, name: str, *, match_basename: bool = False) -> Path | None:
        """Resolve `name` (a target, a path inside a directory input, or an alias) to a module file.

        With `match_basename`, a bare name like `lib.wasm` also finds the one input whose target ends in
        it (how import module names are resolved). A directory resolves to its single `.wasm` file.
        Returns None when nothing matches; raises ExecutionError for an ambiguous directory or a
        symlink leading outside its input.
        """
        host = self._find(name, match_basename=match_basename)
        if host is None or not host.is_dir():
            return host
        modules = sorted(p for p in host.iterdir() if p.suffix == ".wasm" and p.is_file())
        if len(modules) != 1:
            found = ", ".join(p.name for p in modules) or "none"
            raise ExecutionError(
                f"{name} is a directory, which resolves to a module only when it holds exactly one .wasm "
                f"file; it holds: {found}",
                hint="name the module file itself",
            )
        return modules[0]

    def _find(self, name: str, *, match_basename: bool) -> Path | None:
        for entry in self.inputs:
            if entry.alias and entry.alias == name:
                return entry.host_path
        try:
            path = guest_path(name)
        except ValueError as exc:
            raise ExecutionError(str(exc), hint="module paths are paths inside the task, relative ones from /") from exc
        best: MountedInput | None = None
        for entry in self.inputs:
            target = guest_path(entry.target)
            inside = path == target or path.startswith(target.rstrip("/") + "/")
            if inside and (best is None or len(target) > len(guest_path(best.target))):
                best = entry
        if best is not None:
            relative = posixpath.relpath(path, guest_path(best.target))
            host = best.host_path if relative == "." else best.host_path / relative
            if host.exists():
                return _contained(host, best.host_path, name)
        if match_basename:
            basename = PurePosixPath(path).name
            hits = [e for e in self.inputs if PurePosixPath(guest_path(e.target)).name == basename]
            if len(hits) == 1 and hits[0].host_path.exists():
                return hits[0].host_path
        return None


def _contained(host: Path, root: Path, name: str) -> Path:
    # Symlinks inside a directory input must not lead the loader to host files outside that input.
    resolved = host.resolve()
    if host == root:  # the input itself (a module given as a file input): nothing to be outside of
        return resolved
    resolved_root = root.resolve()
    if resolved != resolved_root and not resolved.is_relative_to(resolved_root):
        raise ExecutionError(f"{name} leads outside its input (symlink to {resolved})")
    return resolved


def _directory_preopens(
    inputs: list[MountedInput], outputs: list[MountedOutput]
) -> tuple[list[Preopen], dict[str, list[MountedInput]]]:
    preopens: list[Preopen] = []
    files_by_parent: dict[str, list[MountedInput]] = {}
    try:
        for entry in inputs:
            target = guest_path(entry.target)
            if not entry.host_path.exists():
                raise ExecutionError(f"input {target}: staged path {entry.host_path} does not exist")
            if entry.host_path.is_dir():
                preopens.append(Preopen(entry.host_path, target, writable=not entry.read_only))
            else:
                files_by_parent.setdefault(posixpath.dirname(target), []).append(entry)
        for output in outputs:
            output.host_path.mkdir(parents=True, exist_ok=True)
            preopens.append(Preopen(output.host_path, guest_path(output.target), writable=True))
    except ValueError as exc:
        raise ExecutionError(str(exc), hint="input and output targets must stay inside the task") from exc
    seen: set[str] = set()
    for preopen in preopens:
        if preopen.guest_path in seen or preopen.guest_path in files_by_parent:
            raise ExecutionError(
                f"two mounts at {preopen.guest_path}: WASI cannot overlay a file input, an input directory "
                "or an output folder on the same directory",
                hint="give file inputs a target outside directory inputs and result paths",
            )
        seen.add(preopen.guest_path)
    return preopens, files_by_parent


def _in_place(files_by_parent: dict[str, list[MountedInput]]) -> list[Preopen]:
    """Preopen, without a view, the file inputs the node staged alone in a folder of its own, under their name.

    A staged inline or downloaded file usually is (`<work>/inputs/0/main.wasm` for /app/main.wasm): that
    folder already shows the guest exactly what a view would, so it is preopened at the parent as it is.
    The view's directory, hard link and removal were file-system work every trivial job paid for. Never
    a user's own folder (a local input): the guest would see, or write, whatever else lands there.
    Taken out of `files_by_parent`; the others still get views."""
    preopens = []
    for parent, entries in list(files_by_parent.items()):
        if len(entries) != 1:
            continue
        entry = entries[0]
        if not entry.private:
            continue
        folder = entry.host_path.parent
        try:
            alone = [child.name for child in folder.iterdir()] == [entry.host_path.name]
        except OSError:
            continue
        if alone and entry.host_path.name == posixpath.basename(guest_path(entry.target)) and not folder.is_symlink():
            preopens.append(Preopen(folder, parent, writable=not entry.read_only))
            del files_by_parent[parent]
    return preopens


def _file_views(view_root: Path, files_by_parent: dict[str, list[MountedInput]]) -> list[Preopen]:
    preopens = []
    for index, (parent, entries) in enumerate(sorted(files_by_parent.items())):
        view = view_root / str(index)
        view.mkdir()
        writable = any(not entry.read_only for entry in entries)
        for entry in entries:
            link = view / posixpath.basename(guest_path(entry.target))
            # In a writable view a hard link to a read-only input would let the task change it: copy.
            if writable and entry.read_only:
                shutil.copy2(entry.host_path, link)
                continue
            try:
                link.hardlink_to(entry.host_path)
            except OSError:  # another filesystem, or protected_hardlinks: copying is always possible
                shutil.copy2(entry.host_path, link)
        preopens.append(Preopen(view, parent, writable=writable))
    return preopens
