"""Fixtures every test shares: the `bacalhau` binary, free ports, the test WebAssembly modules, real
`bacalhau serve` nodes started as subprocesses (see serve_node.py for their lifecycle), and the Docker
side: the engine, a busybox test image and a local registry (see docker_env.py).

A missing prerequisite (clang for the modules, the `bacalhau` entry point, a Docker engine) skips locally
and FAILS under `CI=true`, so a green CI never hides a test that did not run.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

import pytest

# Make tests/serve_node.py importable as `serve_node` from every test directory, whatever import mode.
sys.path.insert(0, str(Path(__file__).resolve().parent))

from docker_env import (
    EngineUnavailable,
    LocalRegistry,
    RegistryStartError,
    connect_engine,
    ensure_busybox_image,
)
from parallel import scope_of
from serve_node import BacalhauNode, NodePool, find_free_port, missing_prerequisite

if TYPE_CHECKING:
    import docker

ROOT = Path(__file__).resolve().parent.parent
WASM_BUILD_PY = ROOT / "tests" / "wasm" / "build.py"
ServeFactory = Callable[..., BacalhauNode]


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """Attach the log of every live `bacalhau serve` to the report of a failing test."""
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        already_shown = report.longreprtext
        for node in NodePool.live:
            if str(node.log_path) in already_shown:  # the assertion message carries it already
                continue
            report.sections.append((f"bacalhau serve log ({node.log_path})", node.log_excerpt()))


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object | None:
    """With `--dist loadfile` (scripts/test): whole files to a worker, and the files of tests/parallel.py's
    GENERIC_NODE_NAMES to one worker together. Any other --dist: xdist's own scheduler."""
    if config.getoption("dist", None) != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    class FilesAndSharedNames(LoadFileScheduling):  # type: ignore[misc]
        def _split_scope(self, nodeid: str) -> str:
            return scope_of(nodeid)

    return FilesAndSharedNames(config, log)


# -- fixtures -------------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def bacalhau_bin() -> Path:
    """Path to the `bacalhau` entry point installed in the venv running the tests."""
    candidates = [Path(sys.executable).parent / "bacalhau", ROOT / ".venv" / "bin" / "bacalhau"]
    which = shutil.which("bacalhau")
    if which:
        candidates.append(Path(which))
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    missing_prerequisite("the `bacalhau` command is not installed (run: bash scripts/setup)")


@pytest.fixture(scope="session")
def free_port() -> Callable[[], int]:
    """`free_port()` returns a TCP port on 127.0.0.1 that is free right now."""
    return find_free_port


def _load_wasm_builder() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bacalhau_tests_wasm_build", WASM_BUILD_PY)
    assert spec is not None and spec.loader is not None, f"cannot load {WASM_BUILD_PY}"
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def wasm_modules(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """{name: path} of the test WebAssembly modules (tests/wasm/src), built once per session."""
    if not WASM_BUILD_PY.is_file():
        missing_prerequisite(f"{WASM_BUILD_PY} not found")
    builder = _load_wasm_builder()
    if shutil.which("clang") is None and not os.environ.get("CLANG"):
        missing_prerequisite("clang is not installed: cannot build the test WebAssembly modules (run: bash scripts/setup)")
    out_dir = tmp_path_factory.mktemp("wasm")
    try:
        built: dict[str, Path] = builder.build_modules(out_dir)
    except builder.BuildError as exc:
        if "not found" in str(exc):
            missing_prerequisite(str(exc))
        raise
    return built


@pytest.fixture
def serve(bacalhau_bin: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeFactory]:
    """Factory: `serve(extra_config=[...], start=True)` -> a running BacalhauNode, stopped at teardown."""
    pool = NodePool(bacalhau_bin, tmp_path_factory)
    try:
        yield pool
    finally:
        pool.close()


@pytest.fixture
def node(serve: ServeFactory) -> BacalhauNode:
    """A fresh hybrid node (orchestrator + compute) for this test alone."""
    return serve()


@pytest.fixture(scope="module")
def shared_node(bacalhau_bin: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[BacalhauNode]:
    """One hybrid node for every test of a module (for tests that only add jobs and read)."""
    pool = NodePool(bacalhau_bin, tmp_path_factory)
    try:
        yield pool()
    finally:
        pool.close()


@pytest.fixture
def cli(node: BacalhauNode) -> Callable[..., subprocess.CompletedProcess[str]]:
    """`cli(*args, input=None, timeout=60, env=None)` runs the real `bacalhau` binary against `node`."""
    return node.cli


@pytest.fixture
def run_cli(node: BacalhauNode) -> Callable[..., subprocess.CompletedProcess[str]]:
    """Same as `cli`: `run_cli(*args, input=None, timeout=60, env=None) -> CompletedProcess`."""
    return node.cli


# -- Docker ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def docker_engine() -> Iterator[docker.DockerClient]:
    """A Docker SDK client whose engine answered ping() (scripts/services starts one; scripts/test does it)."""
    try:
        client = connect_engine()
    except EngineUnavailable as exc:
        missing_prerequisite(str(exc))
    try:
        yield client
    finally:
        client.close()


@pytest.fixture(scope="session")
def busybox_image(docker_engine: docker.DockerClient) -> str:
    """`bacalhau-test/busybox:latest`, imported from Debian's busybox-static once (kept between runs)."""
    try:
        return ensure_busybox_image(docker_engine)
    except EngineUnavailable as exc:
        missing_prerequisite(str(exc))


@pytest.fixture(scope="session")
def local_registry(docker_engine: docker.DockerClient, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRegistry]:
    """Debian's `docker-registry` on 127.0.0.1:<free port>; `.push(client, image, repo)` puts an image there."""
    registry = LocalRegistry(tmp_path_factory.mktemp("registry"))
    try:
        registry.start()
    except EngineUnavailable as exc:
        missing_prerequisite(str(exc))
    except RegistryStartError:
        registry.stop()
        raise
    try:
        yield registry
    finally:
        registry.stop()
