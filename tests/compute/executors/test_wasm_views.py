"""File inputs of a wasm task: a file the node staged alone in a folder of its own is preopened in place
(no view directory made and removed per run); everything else still gets a view, so the guest sees only
its inputs. Real wasmtime, the test modules of tests/wasm."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bacalhau.compute.executors import wasm_fs
from bacalhau.compute.executors.base import MountedInput
from bacalhau.compute.executors.wasm import WasmExecutor


@pytest.fixture
def executor() -> WasmExecutor:
    return WasmExecutor()


@pytest.fixture
def views(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The view directories the executor makes (each an mkdtemp), recorded."""
    made: list[str] = []
    real = wasm_fs.tempfile.mkdtemp

    def mkdtemp(*args: Any, **kwargs: Any) -> str:
        path = real(*args, **kwargs)
        made.append(path)
        return path

    monkeypatch.setattr(wasm_fs.tempfile, "mkdtemp", mkdtemp)
    return made


def staged(tasks: Any, name: str, content: str, folder: str = "staged") -> Path:
    path = tasks.dir(folder) / name
    path.write_text(content)
    return path


def with_private_module(tasks: Any, name: str, params: list[str], inputs: list[MountedInput]) -> Any:
    """A request whose module is staged as the node stages one (alone, in a folder of its own)."""
    own = tasks.dir(f"module-{name}") / f"{name}.wasm"
    own.write_bytes(tasks.modules[name].read_bytes())
    return tasks.request(None, entry_module=f"/app/{name}.wasm", params=params,
                         inputs=[MountedInput(own, f"/app/{name}.wasm", private=True), *inputs])


async def test_a_private_file_alone_in_its_folder_needs_no_view(executor: WasmExecutor, tasks: Any, views: list[str]) -> None:
    data = staged(tasks, "data.txt", "staged by the node\n")
    request = with_private_module(tasks, "cat", ["/in/data.txt"], [MountedInput(data, "/in/data.txt", private=True)])
    outcome = await executor.run(request)
    assert outcome.exit_code == 0, request.stderr_path.read_text()
    assert request.stdout_path.read_text() == "staged by the node\n"
    assert views == []


async def test_a_read_only_private_file_in_place_still_cannot_be_written(
    executor: WasmExecutor, tasks: Any, views: list[str]
) -> None:
    data = staged(tasks, "data.txt", "keep me\n")
    request = with_private_module(tasks, "write_attempt", ["/in/data.txt"], [MountedInput(data, "/in/data.txt", private=True)])
    assert (await executor.run(request)).exit_code == 1
    assert views == []
    assert data.read_text() == "keep me\n"
    assert sorted(p.name for p in data.parent.iterdir()) == ["data.txt"]


async def test_a_private_file_with_company_gets_a_view_that_hides_the_rest(
    executor: WasmExecutor, tasks: Any, views: list[str]
) -> None:
    data = staged(tasks, "data.txt", "mine\n")
    (data.parent / "secret.txt").write_text("not an input\n")
    request = with_private_module(tasks, "cat", ["/in/secret.txt"], [MountedInput(data, "/in/data.txt", private=True)])
    assert (await executor.run(request)).exit_code == 1  # only the input itself is visible
    assert len(views) == 1


async def test_a_users_local_file_always_gets_a_view(executor: WasmExecutor, tasks: Any, views: list[str]) -> None:
    data = staged(tasks, "data.txt", "from the host\n", folder="users-own")
    request = with_private_module(tasks, "cat", ["/in/data.txt"], [MountedInput(data, "/in/data.txt")])
    assert (await executor.run(request)).exit_code == 0
    assert request.stdout_path.read_text() == "from the host\n"
    assert len(views) == 1


async def test_a_private_file_under_another_name_gets_a_view(executor: WasmExecutor, tasks: Any, views: list[str]) -> None:
    data = staged(tasks, "some-staging-name", "renamed\n")
    request = with_private_module(tasks, "cat", ["/in/data.txt"], [MountedInput(data, "/in/data.txt", private=True)])
    assert (await executor.run(request)).exit_code == 0
    assert request.stdout_path.read_text() == "renamed\n"
    assert len(views) == 1
