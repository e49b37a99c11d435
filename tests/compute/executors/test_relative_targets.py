"""Relative input targets in the executors, as Bacalhau's own jobs write them (`EntryModule: main.wasm`,
`Target: main.wasm`): the wasm executor finds modules and data from `/` (Bacalhau's mountfs), and the
docker executor fails the execution as the engine does in Bacalhau, naming the field. Real wasmtime,
real modules from tests/wasm/src; the docker check comes before any engine call."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bacalhau.compute.executors.base import MountedInput, MountedOutput, RunRequest
from bacalhau.compute.executors.docker import DockerExecutor
from bacalhau.compute.executors.wasm import WasmExecutor
from bacalhau.models.errors import ErrorCode, ExecutionError, ValidationFailed
from bacalhau.models.job import NetworkConfig, SpecConfig
from bacalhau.models.resources import Resources


def read(path: Path) -> str:
    return path.read_text() if path.exists() else ""


async def test_entry_module_main_wasm_runs_from_a_relative_target(tasks: Any) -> None:
    request = tasks.request(
        None,
        inputs=[MountedInput(tasks.modules["hello"], "main.wasm")],
        entry_module="main.wasm",
        params=["Lisbon"],
    )
    outcome = await WasmExecutor().run(request)
    assert outcome.exit_code == 0, read(request.stderr_path)
    assert read(request.stdout_path) == "hello from wasm\narg1=Lisbon\n"


@pytest.mark.parametrize(("target", "entry"), [("main.wasm", "/main.wasm"), ("/main.wasm", "main.wasm"),
                                               ("./app/main.wasm", "app/main.wasm")])
async def test_relative_and_absolute_spellings_name_the_same_module(tasks: Any, target: str, entry: str) -> None:
    request = tasks.request(None, inputs=[MountedInput(tasks.modules["hello"], target)], entry_module=entry)
    assert (await WasmExecutor().run(request)).exit_code == 0, read(request.stderr_path)


async def test_a_data_input_at_a_relative_target_is_readable_at_its_place(tasks: Any) -> None:
    staged = tasks.dir("staged") / "staging-name"
    staged.write_text("from a relative target\n")
    results = tasks.dir("outputs")
    request = tasks.request(
        None,
        inputs=[MountedInput(tasks.modules["cat"], "main.wasm"), MountedInput(staged, "data/words.txt")],
        outputs=[MountedOutput("outputs", results, "/outputs")],
        entry_module="main.wasm",
        # a relative path inside the module is taken from the working directory `/`, as under wazero
        params=["data/words.txt", "/outputs/copy.txt"],
    )
    outcome = await WasmExecutor().run(request)
    assert outcome.exit_code == 0, read(request.stderr_path)
    assert read(request.stdout_path) == "from a relative target\n"
    assert (results / "copy.txt").read_text() == "from a relative target\n"


async def test_import_modules_may_be_relative_targets(tasks: Any) -> None:
    request = tasks.request(
        None,
        inputs=[MountedInput(tasks.modules["uses_lib"], "main.wasm"), MountedInput(tasks.modules["lib"], "lib.wasm")],
        entry_module="main.wasm",
        import_modules=["lib.wasm"],
    )
    assert (await WasmExecutor().run(request)).exit_code == 0, read(request.stderr_path)
    assert read(request.stdout_path) == "2+3=5\n"


@pytest.mark.parametrize("key", ["EntryModule", "ImportModules"])
def test_a_module_name_climbing_out_of_the_task_is_refused_with_its_field(key: str) -> None:
    value: Any = "../main.wasm" if key == "EntryModule" else ["../lib.wasm"]
    params = {"EntryModule": "main.wasm", key: value}
    with pytest.raises(ValidationFailed) as caught:
        WasmExecutor().validate(SpecConfig(type="wasm", params=params))
    bad = "../main.wasm" if key == "EntryModule" else "../lib.wasm"
    assert {e.path: e.message for e in caught.value.errors} == {
        f"Engine.Params.{key}": f"{bad!r} climbs out of the task's filesystem ('..' above /)"
    }


async def test_docker_fails_a_relative_target_naming_the_field_before_any_engine_call(tmp_path: Path) -> None:
    staged = tmp_path / "words.txt"
    staged.write_text("one\n")
    request = RunRequest(
        execution_id="e-relative",
        job_id="j-relative",
        job_type="batch",
        engine=SpecConfig(type="docker", params={"Image": "busybox:1.36"}),
        env={},
        inputs=[MountedInput(staged, "/inputs/words.txt"), MountedInput(staged, "data/words.txt")],
        outputs=[],
        resources=Resources(),
        network=NetworkConfig(),
        stdout_path=tmp_path / "stdout",
        stderr_path=tmp_path / "stderr",
    )

    def no_engine() -> Any:
        raise AssertionError("the engine must not be contacted for a job that cannot run")

    with pytest.raises(ExecutionError) as caught:
        await DockerExecutor(node_id="n-test", client_factory=no_engine).run(request)
    error = caught.value
    assert error.message == (
        "InputSources[1].Target 'data/words.txt' is a relative path: the Docker engine mounts inputs only at "
        "absolute paths"
    )
    assert error.hint == "write the Target as an absolute path, e.g. '/data/words.txt'"
    assert error.code == ErrorCode.ValidationError
