"""NoopExecutor: succeeds at once with empty output; cancellation and timeouts still behave."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from bacalhau.compute.executors.base import RunRequest
from bacalhau.compute.executors.noop import NoopExecutor
from bacalhau.models.errors import ErrorCode, ExecutionError
from bacalhau.models.job import NetworkConfig, SpecConfig
from bacalhau.models.resources import Resources


def noop_request(tmp_path: Path, execution_id: str = "e-noop", timeout_s: float | None = None) -> RunRequest:
    return RunRequest(
        execution_id=execution_id,
        job_id="j-noop",
        job_type="batch",
        engine=SpecConfig(type="noop"),
        env={},
        inputs=[],
        outputs=[],
        resources=Resources(),
        network=NetworkConfig(),
        stdout_path=tmp_path / "stdout",
        stderr_path=tmp_path / "stderr",
        timeout_s=timeout_s,
    )


async def test_run_exits_zero_at_once_with_empty_output_files(tmp_path: Path) -> None:
    request = noop_request(tmp_path)
    outcome = await NoopExecutor().run(request)
    assert outcome.exit_code == 0
    assert request.stdout_path.read_bytes() == b""
    assert request.stderr_path.read_bytes() == b""


async def test_cancel_before_start_prevents_the_run(tmp_path: Path) -> None:
    executor = NoopExecutor()
    request = noop_request(tmp_path)
    await executor.cancel(request.execution_id)
    with pytest.raises(ExecutionError, match=r"^execution cancelled$"):
        await executor.run(request)
    assert not request.stdout_path.exists()
    # The pending cancel was consumed: a later run of the same id runs.
    assert (await executor.run(request)).exit_code == 0


async def test_cancel_stops_a_run_that_lasts(tmp_path: Path) -> None:
    executor = NoopExecutor(duration_s=60)
    request = noop_request(tmp_path)
    run = asyncio.create_task(executor.run(request))
    await asyncio.sleep(0)  # let the run reach its wait: it has no other await before it
    await executor.cancel(request.execution_id)
    with pytest.raises(ExecutionError, match=r"^execution cancelled$"):
        await run


async def test_a_lasting_run_honours_the_task_timeout(tmp_path: Path) -> None:
    with pytest.raises(ExecutionError, match=r"^execution timed out after 0\.05s$") as caught:
        await NoopExecutor(duration_s=60).run(noop_request(tmp_path, timeout_s=0.05))
    assert caught.value.code == ErrorCode.TimeOut


async def test_a_lasting_run_shorter_than_the_timeout_completes(tmp_path: Path) -> None:
    outcome = await NoopExecutor(duration_s=0.01).run(noop_request(tmp_path, timeout_s=30))
    assert outcome.exit_code == 0


def test_validate_accepts_any_params_and_is_installed() -> None:
    executor = NoopExecutor()
    executor.validate(SpecConfig(type="noop", params={"Anything": 1}))
    assert executor.is_installed()
