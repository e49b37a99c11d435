"""Build the WebAssembly modules the tests (and the README demo) run.

By default every `src/*.c` is compiled with `clang --target=wasm32-wasi` and every `src/*.wat` is
assembled with `wasmtime.wat2wasm`, into `OUT_DIR/<stem>.wasm`. A sidecar `<stem>.wasm.sha256` records
the hash of the source and the build command, so a rebuild is skipped while both are unchanged (cheap
enough to run at the start of every test session). Given explicit sources (e.g. `examples/hello.c` for
the README demo), only those are built.

    python tests/wasm/build.py OUT_DIR [SOURCE.c|SOURCE.wat ...]
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

SRC_DIR = Path(__file__).resolve().parent / "src"
CLANG_FLAGS = ["--target=wasm32-wasi", "-O2", "-s"]


class BuildError(RuntimeError):
    """A test module could not be built (compiler missing or a compile error)."""


def build_modules(out_dir: Path, sources: Iterable[Path] | None = None) -> dict[str, Path]:
    """Build `sources` (default: every module under tests/wasm/src); return {stem: path to .wasm}.

    Up-to-date outputs (same source hash and flags) are reused. Raises BuildError if clang is
    missing or a source does not compile.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    if sources is None:
        sources = sorted(SRC_DIR.glob("*.c")) + sorted(SRC_DIR.glob("*.wat"))
    sources = [Path(src) for src in sources]
    stems = [src.stem for src in sources]
    duplicates = {stem for stem in stems if stems.count(stem) > 1}
    if duplicates:
        raise BuildError(f"two sources would build the same module name: {sorted(duplicates)}")
    clang = _find_clang() if any(src.suffix == ".c" for src in sources) else ""
    # clang runs as a subprocess, so threads give real parallelism here.
    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
        built = list(pool.map(lambda src: _build_one(src, out_dir, clang), sources))
    return dict(zip(stems, built, strict=True))


def _find_clang() -> str:
    clang = os.environ.get("CLANG") or shutil.which("clang")
    if not clang:
        raise BuildError(
            "clang not found: building the test WebAssembly modules needs clang with the wasm32-wasi "
            "target, wasm-ld (lld) and wasi-libc (Debian: apt-get install clang lld wasi-libc), "
            "or set CLANG=/path/to/clang"
        )
    return clang


def _build_one(src: Path, out_dir: Path, clang: str) -> Path:
    out = out_dir / f"{src.stem}.wasm"
    stamp = out_dir / f"{src.stem}.wasm.sha256"
    source = src.read_bytes()
    recipe = " ".join(CLANG_FLAGS) if src.suffix == ".c" else "wat2wasm"
    key = hashlib.sha256(source + b"\0" + recipe.encode()).hexdigest()
    if out.exists() and stamp.exists() and stamp.read_text().strip() == key:
        return out
    if src.suffix == ".wat":
        import wasmtime  # imported lazily: the C modules build without wasmtime installed

        _write_atomic(out, bytes(wasmtime.wat2wasm(source.decode())))
    elif src.suffix == ".c":
        _compile_c(clang, src, out)
    else:
        raise BuildError(f"do not know how to build {src}: expected a .c or .wat file")
    _write_atomic(stamp, key.encode())
    return out


def _compile_c(clang: str, src: Path, out: Path) -> None:
    # Compile to a temporary name then rename, so a crashed build never leaves a half-written module.
    fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=f".{out.stem}-", suffix=".wasm")
    os.close(fd)
    try:
        result = subprocess.run(
            [clang, *CLANG_FLAGS, str(src), "-o", tmp], capture_output=True, text=True, check=False
        )
        if result.returncode != 0:
            raise BuildError(f"clang failed on {src} (exit {result.returncode}):\n{result.stderr}")
        os.replace(tmp, out)
    finally:
        Path(tmp).unlink(missing_ok=True)


def _write_atomic(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}-")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; the modules may be staged by other users' tools
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


def main(argv: list[str]) -> int:
    """CLI entry: build into argv[0] the sources named after it (default: the test modules)."""
    if not argv:
        print("usage: python tests/wasm/build.py OUT_DIR [SOURCE.c|SOURCE.wat ...]", file=sys.stderr)
        return 2
    try:
        built = build_modules(Path(argv[0]), [Path(p) for p in argv[1:]] or None)
    except BuildError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for path in built.values():
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
