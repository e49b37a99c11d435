"""WasmExecutor against real wasmtime and real modules built from tests/wasm/src (no mocks)."""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest

from bacalhau.compute.executors.base import MountedInput, MountedOutput
from bacalhau.compute.executors.wasm import WasmExecutor
from bacalhau.models.errors import ErrorCode, ExecutionError, ValidationFailed
from bacalhau.models.job import SpecConfig

WaitUntil = Callable[..., Coroutine[Any, Any, None]]
MiB = 1024 * 1024


@pytest.fixture
def executor() -> WasmExecutor:
    return WasmExecutor()


def read(path: Path) -> str:
    return path.read_text() if path.exists() else ""


# -- output, argv, env, exit codes -------------------------------------------------------------------
async def test_hello_writes_its_output_to_the_stdout_file(executor: WasmExecutor, tasks: Any) -> None:
    request = tasks.request("hello")
    outcome = await executor.run(request)
    assert outcome.exit_code == 0
    assert read(request.stdout_path) == "hello from wasm\n"
    assert read(request.stderr_path) == ""


async def test_parameters_become_argv_after_the_module_name(executor: WasmExecutor, tasks: Any) -> None:
    request = tasks.request("hello", params=["world", "--not-a-flag", "two words"])
    await executor.run(request)
    assert read(request.stdout_path).splitlines()[1:] == ["arg1=world", "arg2=--not-a-flag", "arg3=two words"]


async def test_params_are_read_case_insensitively(executor: WasmExecutor, tasks: Any) -> None:
    request = tasks.request(
        None,
        inputs=[MountedInput(tasks.modules["hello"], "/m.wasm")],
        engine_params={"entrymodule": "/m.wasm", "PARAMETERS": ["x"]},
    )
    await executor.run(request)
    assert "arg1=x" in read(request.stdout_path)


async def test_env_reaches_the_module(executor: WasmExecutor, tasks: Any) -> None:
    request = tasks.request(
        "env",
        params=["GREETING", "BACALHAU_JOB_ID", "MISSING"],
        env={"GREETING": "hi there", "BACALHAU_JOB_ID": "j-1"},
    )
    await executor.run(request)
    assert read(request.stdout_path).splitlines() == ["GREETING=hi there", "BACALHAU_JOB_ID=j-1", "MISSING=<unset>"]


async def test_nonzero_exit_code_is_an_outcome_not_an_error(executor: WasmExecutor, tasks: Any) -> None:
    outcome = await executor.run(tasks.request("exitcode", params=["7"]))
    assert outcome.exit_code == 7


async def test_custom_entrypoint_runs_a_module_without_start(executor: WasmExecutor, tasks: Any) -> None:
    outcome = await executor.run(tasks.request("reactor", entrypoint="hello"))
    assert outcome.exit_code == 0


# -- failures the user must understand ---------------------------------------------------------------
async def test_trap_raises_execution_error_naming_the_trap(executor: WasmExecutor, tasks: Any) -> None:
    request = tasks.request("trap")
    with pytest.raises(ExecutionError) as caught:
        await executor.run(request)
    assert caught.value.message == "wasm trap: wasm `unreachable` instruction executed"
    assert "wasm backtrace" in caught.value.details["Backtrace"]
    assert read(request.stdout_path) == "about to trap\n"


async def test_missing_entrypoint_lists_the_exported_functions(executor: WasmExecutor, tasks: Any) -> None:
    with pytest.raises(ExecutionError) as caught:
        await executor.run(tasks.request("reactor"))
    assert caught.value.message == "module does not export function '_start'; it exports: hello"


async def test_invalid_bytes_are_reported_as_not_a_module(executor: WasmExecutor, tasks: Any) -> None:
    bad = tasks.dir("bad") / "x.wasm"
    bad.write_text("this is not wasm")
    request = tasks.request(None, inputs=[MountedInput(bad, "/x.wasm")], entry_module="/x.wasm")
    with pytest.raises(ExecutionError, match=r"^EntryModule /x.wasm is not a valid WebAssembly module: .*\\0asm"):
        await executor.run(request)


async def test_truncated_module_reports_wasmtimes_reason(executor: WasmExecutor, tasks: Any) -> None:
    truncated = tasks.dir("bad") / "t.wasm"
    truncated.write_bytes(tasks.modules["hello"].read_bytes()[:100])
    request = tasks.request(None, inputs=[MountedInput(truncated, "/t.wasm")], entry_module="/t.wasm")
    with pytest.raises(ExecutionError) as caught:
        await executor.run(request)
    message = caught.value.message
    assert message.startswith("EntryModule /t.wasm is not a valid WebAssembly module: failed to parse")
    assert "\n" not in message


async def test_entry_module_not_among_inputs_lists_the_targets(executor: WasmExecutor, tasks: Any) -> None:
    request = tasks.request("hello", entry_module="/nope.wasm")
    with pytest.raises(ExecutionError) as caught:
        await executor.run(request)
    assert caught.value.message == "EntryModule /nope.wasm not found among the task inputs (targets: /hello.wasm)"


# -- timeout and cancellation ------------------------------------------------------------------------
async def test_timeout_interrupts_an_infinite_loop_promptly(executor: WasmExecutor, tasks: Any) -> None:
    started = time.monotonic()
    with pytest.raises(ExecutionError) as caught:
        await executor.run(tasks.request("loop", timeout_s=0.3))
    assert caught.value.message == "execution timed out after 0.3s"
    assert caught.value.code == ErrorCode.TimeOut
    assert time.monotonic() - started < 5


async def test_cancel_interrupts_a_running_loop(executor: WasmExecutor, tasks: Any, wait_until: WaitUntil) -> None:
    request = tasks.request("loop")
    run = asyncio.create_task(executor.run(request))
    await wait_until(lambda: "looping" in read(request.stdout_path))
    started = time.monotonic()
    await executor.cancel(request.execution_id)
    with pytest.raises(ExecutionError, match=r"^execution cancelled$"):
        await run
    assert time.monotonic() - started < 5
    await executor.cancel(request.execution_id)  # idempotent, also after the end


async def test_cancel_before_start_prevents_the_run(executor: WasmExecutor, tasks: Any) -> None:
    request = tasks.request("hello")
    await executor.cancel(request.execution_id)
    with pytest.raises(ExecutionError, match=r"^execution cancelled$"):
        await executor.run(request)
    assert not request.stdout_path.exists()


async def test_cancelling_the_awaiting_task_stops_the_module(
    executor: WasmExecutor, tasks: Any, wait_until: WaitUntil
) -> None:
    request = tasks.request("loop")
    run = asyncio.create_task(executor.run(request))
    await wait_until(lambda: "looping" in read(request.stdout_path))
    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run
    # The worker unwound before the task finished: a new run with the same id is accepted at once.
    await executor.cancel(request.execution_id)
    with pytest.raises(ExecutionError, match="cancelled"):
        await executor.run(request)


async def test_cancelling_one_execution_leaves_a_concurrent_one_running(
    executor: WasmExecutor, tasks: Any, wait_until: WaitUntil
) -> None:
    first, second = tasks.request("loop"), tasks.request("loop")
    run_first = asyncio.create_task(executor.run(first))
    run_second = asyncio.create_task(executor.run(second))
    await wait_until(lambda: "looping" in read(first.stdout_path) and "looping" in read(second.stdout_path))
    await executor.cancel(first.execution_id)
    with pytest.raises(ExecutionError, match="cancelled"):
        await run_first
    assert not run_second.done()
    await executor.cancel(second.execution_id)
    with pytest.raises(ExecutionError, match="cancelled"):
        await run_second


# -- memory ------------------------------------------------------------------------------------------
async def test_memory_within_the_limit_is_usable(executor: WasmExecutor, tasks: Any) -> None:
    request = tasks.request("memhog", params=["16"], memory=64 * MiB)
    outcome = await executor.run(request)
    assert outcome.exit_code == 0
    assert read(request.stdout_path) == "allocated 16 MiB\n"


async def test_allocation_beyond_the_memory_limit_fails_in_the_module(executor: WasmExecutor, tasks: Any) -> None:
    # memory.grow past the store limit returns -1, so malloc returns NULL: the module sees it, no trap.
    request = tasks.request("memhog", params=["64"], memory=16 * MiB)
    outcome = await executor.run(request)
    assert outcome.exit_code == 1
    assert read(request.stdout_path) == ""
    assert read(request.stderr_path) == "malloc of 64 MiB failed\n"


async def test_limit_below_the_modules_initial_memory_fails_to_instantiate(executor: WasmExecutor, tasks: Any) -> None:
    with pytest.raises(ExecutionError) as caught:
        await executor.run(tasks.request("memhog", params=["1"], memory=64 * 1024))
    assert caught.value.message.startswith("could not instantiate EntryModule /memhog.wasm: memory minimum size")
    assert "Resources.Memory" in caught.value.hint


# -- filesystem ----------------------------------------------------------------------------------------
async def test_write_to_a_read_only_input_fails(executor: WasmExecutor, tasks: Any) -> None:
    data = tasks.dir("data")
    (data / "existing.txt").write_text("original\n")
    for path in ("/data/new.txt", "/data/existing.txt"):
        request = tasks.request("write_attempt", params=[path], inputs=[MountedInput(data, "/data")])
        outcome = await executor.run(request)
        assert outcome.exit_code == 1
        assert read(request.stdout_path).startswith("write failed: ")
    assert sorted(p.name for p in data.iterdir()) == ["existing.txt"]
    assert (data / "existing.txt").read_text() == "original\n"


async def test_write_to_a_read_write_input_reaches_the_host(executor: WasmExecutor, tasks: Any) -> None:
    data = tasks.dir("data")
    request = tasks.request(
        "write_attempt", params=["/data/new.txt"], inputs=[MountedInput(data, "/data", read_only=False)]
    )
    assert (await executor.run(request)).exit_code == 0
    assert (data / "new.txt").read_text() == "written by wasm\n"


async def test_write_outside_every_mount_fails(executor: WasmExecutor, tasks: Any) -> None:
    request = tasks.request("write_attempt", params=["/elsewhere.txt"])
    assert (await executor.run(request)).exit_code == 1
    assert read(request.stdout_path).startswith("write failed: ")


async def test_output_folder_written_by_the_module_shows_up_on_the_host(executor: WasmExecutor, tasks: Any) -> None:
    results = tasks.root / "results" / "outputs"  # not created yet: the executor creates it
    request = tasks.request(
        "write_attempt", params=["/outputs/result.txt"], outputs=[MountedOutput("outputs", results, "/outputs")]
    )
    outcome = await executor.run(request)
    assert outcome.exit_code == 0, read(request.stdout_path)
    assert (results / "result.txt").read_text() == "written by wasm\n"


async def test_file_input_appears_at_its_exact_target(executor: WasmExecutor, tasks: Any) -> None:
    source = tasks.dir("staged") / "some-staging-name"
    source.write_text("inline content\n")
    results = tasks.dir("outputs")
    request = tasks.request(
        "cat",
        params=["/inputs/data.txt", "/outputs/copy.txt"],
        inputs=[MountedInput(source, "/inputs/data.txt")],
        outputs=[MountedOutput("outputs", results, "/outputs")],
    )
    outcome = await executor.run(request)
    assert outcome.exit_code == 0, read(request.stderr_path)
    assert read(request.stdout_path) == "inline content\n"
    assert (results / "copy.txt").read_text() == "inline content\n"


async def test_file_inputs_in_one_view_are_read_only(executor: WasmExecutor, tasks: Any) -> None:
    source = tasks.dir("staged") / "data.txt"
    source.write_text("keep me\n")
    request = tasks.request("write_attempt", params=["/data.txt"], inputs=[MountedInput(source, "/data.txt")])
    assert (await executor.run(request)).exit_code == 1
    assert source.read_text() == "keep me\n"


async def test_entry_module_may_name_an_alias_or_a_directory_with_one_module(
    executor: WasmExecutor, tasks: Any
) -> None:
    app = tasks.dir("app")
    (app / "main.wasm").write_bytes(tasks.modules["hello"].read_bytes())
    (app / "README").write_text("not a module")
    for entry in ("/app", "/app/main.wasm", "my-app"):
        request = tasks.request(
            None, inputs=[MountedInput(app, "/app", alias="my-app")], entry_module=entry, params=["a"]
        )
        assert (await executor.run(request)).exit_code == 0
        assert "arg1=a" in read(request.stdout_path)


async def test_entry_module_path_must_not_escape(executor: WasmExecutor, tasks: Any) -> None:
    with pytest.raises(ExecutionError, match=r"climbs out of the task's filesystem \('\.\.' above /\)"):
        await executor.run(tasks.request("hello", entry_module="/hello.wasm/../../etc/passwd"))


# -- import modules --------------------------------------------------------------------------------------
async def test_import_modules_are_linked_by_module_name(executor: WasmExecutor, tasks: Any) -> None:
    lib = MountedInput(tasks.modules["lib"], "/lib.wasm")
    request = tasks.request("uses_lib", inputs=[lib], import_modules=["/lib.wasm"])
    assert (await executor.run(request)).exit_code == 0
    assert read(request.stdout_path) == "2+3=5\n"


async def test_an_import_resolves_through_the_filesystem_without_import_modules(
    executor: WasmExecutor, tasks: Any
) -> None:
    lib = MountedInput(tasks.modules["lib"], "/libs/lib.wasm")  # found by its basename
    request = tasks.request("uses_lib", inputs=[lib])
    assert (await executor.run(request)).exit_code == 0
    assert read(request.stdout_path) == "2+3=5\n"


async def test_a_missing_import_module_is_named(executor: WasmExecutor, tasks: Any) -> None:
    with pytest.raises(ExecutionError) as caught:
        await executor.run(tasks.request("uses_lib"))
    message = caught.value.message
    assert "imports 'add' from module 'lib.wasm', which is not in the task filesystem" in message
    assert "/uses_lib.wasm" in message


# -- compile cache ---------------------------------------------------------------------------------------
async def test_second_run_of_a_module_hits_the_compile_cache(tasks: Any, tmp_path: Path) -> None:
    cache_dir = tmp_path / "cache"
    executor = WasmExecutor(cache_dir=cache_dir)
    first = await executor.run(tasks.request("hello"))
    second = await executor.run(tasks.request("hello"))
    digest = hashlib.sha256(tasks.modules["hello"].read_bytes()).hexdigest()
    assert first.details == {"ModuleSHA256": digest, "CompileCache": "miss"}
    assert second.details == {"ModuleSHA256": digest, "CompileCache": "hit"}
    assert (cache_dir / f"{digest}.cwasm").is_file()

    restarted = WasmExecutor(cache_dir=cache_dir)  # empty memory cache: the hit comes from disk
    third = await restarted.run(tasks.request("hello"))
    assert third.details["CompileCache"] == "hit"


async def test_a_corrupt_disk_cache_entry_is_rebuilt(tasks: Any, tmp_path: Path) -> None:
    cache_dir = tmp_path / "cache"
    await WasmExecutor(cache_dir=cache_dir).run(tasks.request("hello"))
    (entry,) = cache_dir.glob("*.cwasm")
    entry.write_bytes(entry.read_bytes()[:-10] + b"0123456789")

    request = tasks.request("hello")
    outcome = await WasmExecutor(cache_dir=cache_dir).run(request)
    assert outcome.details["CompileCache"] == "miss"
    assert read(request.stdout_path) == "hello from wasm\n"
    assert (await WasmExecutor(cache_dir=cache_dir).run(tasks.request("hello"))).details["CompileCache"] == "hit"


# -- validate ----------------------------------------------------------------------------------------------
def test_validate_accepts_a_complete_spec(executor: WasmExecutor) -> None:
    executor.validate(
        SpecConfig(
            type="wasm",
            params={
                "EntryModule": "/main.wasm",
                "Entrypoint": "_start",
                "Parameters": ["a"],
                "ImportModules": ["/lib.wasm"],
            },
        )
    )


def test_validate_reports_every_bad_param_with_its_path(executor: WasmExecutor) -> None:
    with pytest.raises(ValidationFailed) as caught:
        executor.validate(
            SpecConfig(
                type="wasm",
                params={
                    "Parameters": "not-a-list",
                    "ImportModules": ["/ok.wasm", "../up.wasm"],
                    "Entrypoint": 3,
                },
            )
        )
    paths = [error.path for error in caught.value.errors]
    assert paths == [
        "Engine.Params.EntryModule",
        "Engine.Params.Entrypoint",
        "Engine.Params.Parameters",
        "Engine.Params.ImportModules",
    ]


def test_validate_rejects_a_legacy_entry_module_object(executor: WasmExecutor) -> None:
    with pytest.raises(ValidationFailed, match=r"EntryModule: must be the target path .* got an object"):
        executor.validate(SpecConfig(type="wasm", params={"EntryModule": {"Source": {"Type": "inline"}}}))


async def test_run_with_invalid_params_raises_execution_error(executor: WasmExecutor, tasks: Any) -> None:
    request = tasks.request("hello", engine_params={"EntryModule": ""})
    with pytest.raises(ExecutionError, match=r"invalid wasm engine params: Engine\.Params\.EntryModule"):
        await executor.run(request)


def test_is_installed(executor: WasmExecutor) -> None:
    assert executor.is_installed()
