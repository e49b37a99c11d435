"""The execution runner: inputs, results folder, env, executor, timeout, publish, cleanup."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from compute_factories import SCRIPTED, make_compute_config, make_registry, scripted_execution

from bacalhau.compute.registry import PluginRegistry
from bacalhau.compute.runner import (
    TIMEOUT_HINT,
    ExecutionRunner,
    RunFailed,
    RunSucceeded,
    effective_timeout_s,
    written_exit_code,
)
from bacalhau.config.types import BacalhauConfig
from bacalhau.models.job import InputSource, ResultPath, SpecConfig, TimeoutConfig
from factories import make_job, make_task

if TYPE_CHECKING:
    from compute_executors import ScriptedExecutor


@pytest.fixture
async def registry(config: BacalhauConfig, executor: ScriptedExecutor) -> AsyncIterator[PluginRegistry]:
    plugins = make_registry(config, executor)
    try:
        yield plugins
    finally:
        await plugins.stop()


@pytest.fixture
def runner(config: BacalhauConfig, registry: PluginRegistry) -> Iterator[ExecutionRunner]:
    made = ExecutionRunner(
        registry=registry,
        data_dir=Path(config.data_dir),
        env_allow_list=["TEST_*", "EXACT"],
        backstop_grace_s=0.2,
    )
    yield made
    made.close()


def inline(text: str, target: str) -> InputSource:
    url = "data:text/plain;base64," + base64.b64encode(text.encode()).decode()
    return InputSource(Source=SpecConfig(Type="inline", Params={"URL": url}), Target=target)


async def test_run_writes_results_and_publishes_them(runner: ExecutionRunner) -> None:
    execution = scripted_execution(
        Stdout="hello\n",
        Stderr="careful\n",
        ExitCode=3,
        publisher="local",
        result_paths=[ResultPath(Name="outputs", Path="/outputs")],
    )

    outcome = await runner.run(execution)

    assert isinstance(outcome, RunSucceeded), outcome
    results = runner.results_dir(execution.id)
    assert (results / "stdout").read_text() == "hello\n"
    assert (results / "stderr").read_text() == "careful\n"
    assert (results / "exitCode").read_text() == "3"
    assert (results / "outputs").is_dir()
    assert outcome.run_output.exit_code == 3, "a non-zero exit code is an outcome, not a failure"
    assert (outcome.run_output.stdout, outcome.run_output.stderr) == ("hello\n", "careful\n")
    assert outcome.published_result.type == "local"
    assert outcome.published_result.params["URL"].endswith(f"/{execution.id}.tar.gz")


async def test_a_leftover_results_folder_of_the_same_execution_is_replaced(runner: ExecutionRunner) -> None:
    execution = scripted_execution(Stdout="fresh\n")
    stale = runner.results_dir(execution.id)
    (stale / "outputs").mkdir(parents=True)
    (stale / "outputs" / "old.txt").write_text("from an earlier attempt")
    (stale / "stdout").write_text("stale output\n")

    outcome = await runner.run(execution)

    assert isinstance(outcome, RunSucceeded), outcome
    assert (stale / "stdout").read_text() == "fresh\n"
    assert not (stale / "outputs").exists(), "an earlier attempt's files must not leak into these results"


async def test_result_paths_are_writable_folders_mounted_at_their_path(
    runner: ExecutionRunner, executor: ScriptedExecutor
) -> None:
    execution = scripted_execution(result_paths=[ResultPath(Name="out", Path="/outputs")])

    await runner.run(execution)

    (output,) = executor.requests[execution.id].outputs
    assert (output.name, output.target) == ("out", "/outputs")
    assert output.host_path == runner.results_dir(execution.id) / "out"


@pytest.mark.parametrize("name", ["stdout", "../escape", "a/b", ""])
async def test_result_path_names_must_be_plain_folder_names(runner: ExecutionRunner, name: str) -> None:
    outcome = await runner.run(scripted_execution(result_paths=[ResultPath(Name=name, Path="/x")]))

    assert isinstance(outcome, RunFailed)
    assert "cannot be used as a folder name" in outcome.message


async def test_run_output_keeps_the_first_2kb(runner: ExecutionRunner) -> None:
    outcome = await runner.run(scripted_execution(Stdout="x" * 3000, Stderr="short"))

    assert isinstance(outcome, RunSucceeded)
    assert outcome.run_output.stdout == "x" * 2048
    assert outcome.run_output.stdout_truncated is True
    assert (outcome.run_output.stderr, outcome.run_output.stderr_truncated) == ("short", False)
    assert outcome.run_output.to_wire()["stderr"] == "short"


async def test_env_gets_system_vars_which_win_over_task_env(
    runner: ExecutionRunner, executor: ScriptedExecutor
) -> None:
    execution = scripted_execution(env={"GREETING": "hi", "BACALHAU_JOB_ID": "forged"})

    await runner.run(execution)

    env = executor.requests[execution.id].env
    assert env["GREETING"] == "hi"
    assert env["BACALHAU_EXECUTION_ID"] == execution.id
    assert env["BACALHAU_JOB_ID"] == execution.job_id
    assert env["BACALHAU_JOB_TYPE"] == "batch"
    assert (env["BACALHAU_PARTITION_INDEX"], env["BACALHAU_PARTITION_COUNT"]) == ("0", "1")


async def test_env_reference_to_an_allow_listed_host_var_is_resolved(
    runner: ExecutionRunner, executor: ScriptedExecutor, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEST_TOKEN", "s3cret")
    monkeypatch.setenv("EXACT", "yes")
    execution = scripted_execution(env={"TOKEN": "env:TEST_TOKEN", "OTHER": "env:EXACT"})

    outcome = await runner.run(execution)

    assert isinstance(outcome, RunSucceeded)
    assert executor.requests[execution.id].env["TOKEN"] == "s3cret"
    assert executor.requests[execution.id].env["OTHER"] == "yes"


async def test_env_reference_outside_the_allow_list_fails_naming_variable_and_list(
    runner: ExecutionRunner, executor: ScriptedExecutor, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME_SECRET", "do-not-leak")
    execution = scripted_execution(env={"LEAK": "env:HOME_SECRET"})

    outcome = await runner.run(execution)

    assert isinstance(outcome, RunFailed)
    assert "HOME_SECRET" in outcome.message
    assert "Compute.Env.AllowList (TEST_*, EXACT)" in outcome.message
    assert outcome.details["ErrorCode"] == "ConfigurationError"
    assert execution.id not in executor.requests, "the task never ran"


async def test_env_reference_to_an_unset_host_var_fails(
    runner: ExecutionRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TEST_MISSING", raising=False)

    outcome = await runner.run(scripted_execution(env={"X": "env:TEST_MISSING"}))

    assert isinstance(outcome, RunFailed)
    assert "TEST_MISSING" in outcome.message and "not set" in outcome.message


async def test_executor_timeout_is_reported_with_bacalhaus_message(runner: ExecutionRunner) -> None:
    outcome = await runner.run(scripted_execution(Block=True, Stdout="partial\n", timeout_s=1))

    assert isinstance(outcome, RunFailed)
    assert outcome.message == "Execution timed out. Execution took longer than 1s"
    assert outcome.details["Hint"] == TIMEOUT_HINT
    assert outcome.details["ErrorCode"] == "TimeOut"
    assert outcome.run_output is not None
    assert outcome.run_output.stdout == "partial\n"
    assert outcome.run_output.error_msg == outcome.message


async def test_runner_backstop_stops_an_executor_that_ignores_its_timeout(
    runner: ExecutionRunner, executor: ScriptedExecutor
) -> None:
    execution = scripted_execution(Block=True, IgnoreTimeout=True, timeout_s=1)

    outcome = await runner.run(execution)

    assert isinstance(outcome, RunFailed)
    assert outcome.message == "Execution timed out. Execution took longer than 1s"
    assert execution.id in executor.cancelled


def test_timeouts_apply_to_batch_and_ops_only() -> None:
    task = make_task(timeouts=TimeoutConfig(ExecutionTimeout=0, TotalTimeout=30))

    assert effective_timeout_s(make_job(type="batch", tasks=[task])) == 30
    assert effective_timeout_s(make_job(type="ops", tasks=[task])) == 30
    assert effective_timeout_s(make_job(type="service", tasks=[task])) is None
    execution_first = make_task(timeouts=TimeoutConfig(ExecutionTimeout=5, TotalTimeout=30))
    assert effective_timeout_s(make_job(tasks=[execution_first])) == 5
    assert effective_timeout_s(make_job(tasks=[make_task()])) is None


async def test_executor_error_fails_the_execution_with_details(runner: ExecutionRunner) -> None:
    outcome = await runner.run(scripted_execution(Stdout="before\n", Error="module trapped"))

    assert isinstance(outcome, RunFailed)
    assert outcome.message == "module trapped"
    assert outcome.details == {
        "ErrorCode": "ExecutionError",
        "Hint": "scripted hint",
        "Retryable": "false",
        "FailsExecution": "true",
    }
    assert outcome.run_output is not None and outcome.run_output.stdout == "before\n"


async def test_unknown_engine_fails_listing_the_supported_ones(runner: ExecutionRunner) -> None:
    outcome = await runner.run(scripted_execution(engine_type="docker"))

    assert isinstance(outcome, RunFailed)
    assert outcome.message == f"unknown engine type 'docker'; supported: noop, {SCRIPTED}"


async def test_inputs_are_staged_for_the_run_and_the_work_dir_cleaned_up_after(
    runner: ExecutionRunner, executor: ScriptedExecutor, tmp_path: Path
) -> None:
    execution = scripted_execution(inputs=[inline("payload", "/inputs/data.txt")])
    seen: list[str] = []
    original_run = executor.run

    async def run_and_look(request):  # type: ignore[no-untyped-def]
        seen.append(request.inputs[0].host_path.read_text())
        return await original_run(request)

    executor.run = run_and_look  # type: ignore[method-assign]

    outcome = await runner.run(execution)

    assert isinstance(outcome, RunSucceeded)
    assert seen == ["payload"]
    (mounted,) = executor.requests[execution.id].inputs
    assert (mounted.target, mounted.read_only) == ("/inputs/data.txt", True)
    assert not runner.work_dir(execution.id).exists()
    # An inline input is shared with the next execution carrying the same data (inline_store.py), in a
    # folder of the node's own that an executor may mount as it is.
    assert mounted.private and mounted.host_path.read_text() == "payload"
    again = scripted_execution(inputs=[inline("payload", "/inputs/data.txt")])
    assert isinstance(await runner.run(again), RunSucceeded)
    assert executor.requests[again.id].inputs[0].host_path == mounted.host_path


async def test_whatever_is_left_in_the_staging_area_is_deleted_too(
    runner: ExecutionRunner, executor: ScriptedExecutor
) -> None:
    """The staging area is usually empty once each input's storage cleaned up (removed on the loop);
    anything else left there (a folder tree) is still deleted."""
    execution = scripted_execution(inputs=[inline("payload", "/inputs/data.txt")])
    original_run = executor.run

    async def run_and_litter(request):  # type: ignore[no-untyped-def]
        litter = runner.work_dir(execution.id) / "litter" / "deep"
        litter.mkdir(parents=True)
        (litter / "file").write_text("left behind")
        return await original_run(request)

    executor.run = run_and_litter  # type: ignore[method-assign]

    outcome = await runner.run(execution)

    assert isinstance(outcome, RunSucceeded)
    assert not runner.work_dir(execution.id).exists()


async def test_bad_input_fails_only_its_execution(runner: ExecutionRunner, executor: ScriptedExecutor) -> None:
    bad = scripted_execution(
        inputs=[InputSource(Source=SpecConfig(Type="local", Params={"SourcePath": "/etc"}), Target="/etc")]
    )
    good = scripted_execution(Stdout="fine\n")

    bad_outcome, good_outcome = await asyncio.gather(runner.run(bad), runner.run(good))

    assert isinstance(bad_outcome, RunFailed)
    assert bad_outcome.message == "volume /etc is not allowlisted"
    assert bad_outcome.details["ErrorCode"] == "ConfigurationError"
    assert bad.id not in executor.requests
    assert isinstance(good_outcome, RunSucceeded)


async def test_local_input_inside_the_allow_list_is_bound_read_only(tmp_path: Path, executor: ScriptedExecutor) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    config = make_compute_config(tmp_path, AllowListedLocalPaths=[f"{shared}:rw"])
    registry = make_registry(config, executor)
    runner = ExecutionRunner(registry=registry, data_dir=Path(config.data_dir))
    source = InputSource(Source=SpecConfig(Type="localDirectory", Params={"SourcePath": str(shared)}), Target="/d")
    execution = scripted_execution(inputs=[source])

    outcome = await runner.run(execution)

    assert isinstance(outcome, RunSucceeded)
    (mounted,) = executor.requests[execution.id].inputs
    assert (mounted.host_path, mounted.read_only) == (shared.resolve(), True)
    assert shared.is_dir(), "a user's folder is never cleaned up"


async def test_cancelling_the_run_stops_the_executor_and_cleans_up(
    runner: ExecutionRunner, executor: ScriptedExecutor
) -> None:
    execution = scripted_execution(Block=True, inputs=[inline("x", "/in")])
    task = asyncio.create_task(runner.run(execution))
    async with asyncio.timeout(10):
        await executor.started[execution.id].wait()

    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    assert execution.id in executor.cancelled
    assert not runner.work_dir(execution.id).exists()


async def test_publishing_callback_runs_before_publish(runner: ExecutionRunner) -> None:
    calls: list[str] = []

    async def on_publishing() -> None:
        calls.append("publishing")

    outcome = await runner.run(scripted_execution(publisher="noop"), on_publishing=on_publishing)

    assert isinstance(outcome, RunSucceeded)
    assert calls == ["publishing"]
    assert outcome.published_result.to_wire() == {"Type": "noop", "Params": {}}


async def test_a_task_without_a_publisher_is_never_publishing(runner: ExecutionRunner) -> None:
    """As in Bacalhau's executor: no publisher named, no Publishing state (the result is still noop's)."""
    calls: list[str] = []

    async def on_publishing() -> None:
        calls.append("publishing")

    outcome = await runner.run(scripted_execution(), on_publishing=on_publishing)

    assert isinstance(outcome, RunSucceeded)
    assert calls == []
    assert outcome.published_result.to_wire() == {"Type": "noop", "Params": {}}


async def test_real_noop_engine_runs_through_the_runner(runner: ExecutionRunner) -> None:
    execution = scripted_execution(engine_type="noop")
    outcome = await runner.run(execution)

    assert isinstance(outcome, RunSucceeded)
    assert outcome.run_output.exit_code == 0
    # The noop engine writes no stderr: the results still hold every file Bacalhau's layout has.
    results = runner.results_dir(execution.id)
    assert {path.name for path in results.iterdir()} >= {"stdout", "stderr", "exitCode"}
    assert (results / "stderr").read_bytes() == b""


# -- resume: taking back what an earlier process of the node started ------------------------------------
async def test_resume_collects_the_surviving_task_keeping_what_it_wrote_and_staging_nothing(
    config: BacalhauConfig,
) -> None:
    from compute_executors import ReattachingExecutor

    from bacalhau.compute.executors.base import RunOutcome

    executor = ReattachingExecutor()
    plugins = make_registry(config, executor)
    runner = ExecutionRunner(registry=plugins, data_dir=Path(config.data_dir))
    execution = scripted_execution(
        inputs=[inline("never staged again", "/inputs/a")], result_paths=[ResultPath(Name="outputs", Path="/outputs")]
    )
    results = runner.results_dir(execution.id)
    (results / "outputs").mkdir(parents=True)
    (results / "outputs" / "written-by-the-task").write_text("kept")
    executor.survivors[execution.id] = RunOutcome(exit_code=2)
    assert runner.can_resume(execution)

    outcome = await runner.resume(execution)
    await runner.cleanup(execution.id)

    assert isinstance(outcome, RunSucceeded), outcome
    assert outcome.run_output.exit_code == 2
    assert (results / "outputs" / "written-by-the-task").read_text() == "kept"
    assert (results / "exitCode").read_text() == "2"
    assert not runner.work_dir(execution.id).exists()
    request = executor.requests.get(execution.id)
    assert request is None, "resume must not run the task again"


async def test_resume_says_lost_when_the_task_is_gone_or_the_engine_cannot_reattach(
    runner: ExecutionRunner, config: BacalhauConfig
) -> None:
    from compute_executors import ReattachingExecutor

    execution = scripted_execution()
    runner.results_dir(execution.id).mkdir(parents=True)
    assert not runner.can_resume(execution), "the scripted engine runs tasks in-process: nothing survives"
    assert await runner.resume(execution) is None

    reattaching = ExecutionRunner(
        registry=make_registry(config, ReattachingExecutor()), data_dir=Path(config.data_dir)
    )
    assert reattaching.can_resume(execution)
    assert await reattaching.resume(execution) is None


async def test_what_a_task_writes_outside_its_mounts_counts_towards_its_disk_limit(config: BacalhauConfig) -> None:
    """An engine that measures a task's own filesystem (a container's writable layer) has it counted
    with the result paths: over Resources.Disk, the task is stopped and the execution fails saying where."""
    from compute_executors import ScratchWritingExecutor

    engine = ScratchWritingExecutor()
    plugins = make_registry(config, engine)
    runner = ExecutionRunner(registry=plugins, data_dir=Path(config.data_dir), backstop_grace_s=0.2)
    try:
        execution = scripted_execution(disk="10mb", Block="yes")
        engine.scratch[execution.id] = 50 * 1000 * 1000
        async with asyncio.timeout(10):
            outcome = await runner.run(execution)
        assert isinstance(outcome, RunFailed), outcome
        assert "50.0 MB inside its container" in outcome.message, outcome.message
        assert "over its disk limit of 10.0 MB (Resources.Disk)" in outcome.message
        assert outcome.details["ScratchBytes"] == str(50 * 1000 * 1000)
        assert execution.id in engine.cancelled, "the task was not stopped"
        within = scripted_execution(disk="10mb", Stdout="fine\n")
        engine.scratch[within.id] = 1000
        assert isinstance(await runner.run(within), RunSucceeded)
    finally:
        await plugins.stop()


async def test_an_engine_that_crashes_fails_the_execution_as_the_nodes_fault(config: BacalhauConfig) -> None:
    """A plugin bug is no reason to fail the job for good: the failure is retryable (another node may
    run it), unlike an error the engine raises about the task itself."""
    from compute_executors import ScriptedExecutor

    class Crashing(ScriptedExecutor):
        async def run(self, request):  # type: ignore[no-untyped-def]
            if request.engine.param("Error"):
                return await super().run(request)
            raise RuntimeError("segfault in the engine binding")

    plugins = make_registry(config, Crashing())
    runner = ExecutionRunner(registry=plugins, data_dir=Path(config.data_dir), backstop_grace_s=0.2)
    try:
        outcome = await runner.run(scripted_execution())
        assert isinstance(outcome, RunFailed)
        assert "segfault in the engine binding" in outcome.message
        assert outcome.details["Retryable"] == "true"
        own_fault = await runner.run(scripted_execution(Error="no such entrypoint"))
        assert isinstance(own_fault, RunFailed) and own_fault.details["Retryable"] == "false"
    finally:
        await plugins.stop()


@pytest.mark.parametrize(("content", "expected"), [(b"0", 0), (b"137\n", 137), (b"", None), (b"\0\0", None), (b"1x", None)])
def test_an_exit_code_is_read_only_when_it_was_written_whole(tmp_path: Path, content: bytes, expected: int | None) -> None:
    """exitCode is written with one write: a node killed between its create and its write leaves it
    empty, which reads as not written (the run was still going), as does anything that is not a number."""
    (tmp_path / "exitCode").write_bytes(content)
    assert written_exit_code(tmp_path) == expected
    assert written_exit_code(tmp_path / "missing") is None
