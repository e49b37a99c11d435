"""Where a path inside a task lands: an input's Target, a wasm EntryModule or ImportModules name.

Bacalhau asks only that a Target is not blank (`pkg/models/input_source.go`) and hands it to the
executor as written. Its wasm executor mounts every input into one virtual filesystem that is the
guest's `/`, ignoring leading slashes (`pkg/executor/wasm/util/mountfs`), and its loader looks
EntryModule and ImportModules up in that same filesystem (`pkg/executor/wasm/loader.go`); so
`main.wasm` and `/main.wasm` are one place, and Bacalhau's own jobs write `EntryModule: main.wasm`
with an input at `Target: main.wasm`. Docker, by contrast, hands the Target to the engine, which
mounts only absolute paths.

    main.wasm             -> /main.wasm
    ./data/in.csv         -> /data/in.csv
    /inputs/../data       -> /data
    ../x                  -> refused: climbs above the task's root
    /inputs/../../etc     -> refused: climbs above the task's root

Resolution is lexical (like Go's filepath.Clean), never against a real filesystem.
"""

from __future__ import annotations


class PathEscapesTask(ValueError):
    """A path whose `..` components climb above the task's root `/`."""


def resolve_task_path(path: str) -> str:
    """The absolute, normalised place of `path` in the task's filesystem (relative paths start at `/`).

    Raises PathEscapesTask when `..` climbs above `/`, ValueError for a NUL character. Pure.
    """
    if "\x00" in path:
        raise ValueError(f"{path!r} must not contain NUL characters")
    parts: list[str] = []
    for part in path.strip().split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if not parts:
                raise PathEscapesTask(f"{path!r} climbs out of the task's filesystem ('..' above /)")
            parts.pop()
            continue
        parts.append(part)
    return "/" + "/".join(parts)
