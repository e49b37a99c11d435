"""Factories of run requests for the executor tests.

The test modules themselves come from the session fixture `wasm_modules` (tests/conftest.py), which
builds tests/wasm/src once per session with tests/wasm/build.py (skipped locally, failed under CI=true,
when clang is missing).
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from bacalhau.compute.executors.base import MountedInput, MountedOutput, RunRequest
from bacalhau.models.job import NetworkConfig, SpecConfig
from bacalhau.models.resources import Resources

_ids = itertools.count(1)


@dataclass
class Tasks:
    """Builds RunRequests whose entry module is staged as a file input at `/<name>.wasm`."""

    root: Path
    modules: dict[str, Path]
    made: list[RunRequest] = field(default_factory=list)

    def request(
        self,
        module: str | None = "hello",
        *,
        params: list[str] | None = None,
        env: dict[str, str] | None = None,
        inputs: list[MountedInput] | None = None,
        outputs: list[MountedOutput] | None = None,
        timeout_s: float | None = None,
        memory: int = 0,
        entrypoint: str | None = None,
        import_modules: list[str] | None = None,
        entry_module: str | None = None,
        execution_id: str | None = None,
        engine_params: dict[str, Any] | None = None,
    ) -> RunRequest:
        """A wasm RunRequest; `module=None` stages no module (bring your own in `inputs`)."""
        execution_id = execution_id or f"e-test-{next(_ids)}"
        run_dir = self.root / execution_id
        run_dir.mkdir(parents=True, exist_ok=True)
        staged = list(inputs or [])
        if module is not None:
            staged.insert(0, MountedInput(host_path=self.modules[module], target=f"/{module}.wasm"))
        engine_params = dict(engine_params or {})
        if not any(key.lower() == "entrymodule" for key in engine_params):
            engine_params["EntryModule"] = entry_module or f"/{module}.wasm"
        if params is not None:
            engine_params["Parameters"] = params
        if entrypoint is not None:
            engine_params["Entrypoint"] = entrypoint
        if import_modules is not None:
            engine_params["ImportModules"] = import_modules
        request = RunRequest(
            execution_id=execution_id,
            job_id="j-test",
            job_type="batch",
            engine=SpecConfig(type="wasm", params=engine_params),
            env=env or {},
            inputs=staged,
            outputs=list(outputs or []),
            resources=Resources(memory=memory),
            network=NetworkConfig(),
            stdout_path=run_dir / "stdout",
            stderr_path=run_dir / "stderr",
            timeout_s=timeout_s,
        )
        self.made.append(request)
        return request

    def dir(self, name: str) -> Path:
        """A fresh host directory under this test's tmp dir."""
        path = self.root / "dirs" / name
        path.mkdir(parents=True, exist_ok=True)
        return path


@pytest.fixture
def tasks(tmp_path: Path, wasm_modules: dict[str, Path]) -> Tasks:
    """Request factory over the built test modules, writing into this test's tmp dir."""
    return Tasks(root=tmp_path, modules=wasm_modules)


async def _wait_until(predicate: Callable[[], bool], *, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout_s}s")
        await asyncio.sleep(0.01)


WaitUntil = Callable[..., Coroutine[Any, Any, None]]


@pytest.fixture
def wait_until() -> WaitUntil:
    """`await wait_until(predicate, timeout_s=10)`: wait for a condition, failing after a generous bound."""
    return _wait_until
