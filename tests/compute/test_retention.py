"""Results retention: a real execution store and real folders, with a clock the test moves."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import pytest

from bacalhau.compute import expired_records
from bacalhau.compute.retention import ResultsRetention
from bacalhau.compute.store import ExecutionStore
from bacalhau.config.types import BacalhauConfig
from bacalhau.models.state import ExecutionStateType as State
from factories import make_execution, make_job

HOUR_S = 3600.0
RETENTION_S = 168 * HOUR_S


class Clock:
    def __init__(self) -> None:
        self.now_s = time.time()

    def __call__(self) -> float:
        return self.now_s


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def retention(tmp_path: Path, store: ExecutionStore, clock: Clock) -> ResultsRetention:
    return ResultsRetention(
        store=store,
        results_dir=tmp_path / "compute" / "results",
        published_dir=tmp_path / "compute" / "published",
        retention_s=RETENTION_S,
        clock=clock,
    )


def leave_results(tmp_path: Path, execution_id: str, size: int = 100) -> tuple[Path, Path]:
    """What a run and the local publisher leave for `execution_id`."""
    results = tmp_path / "compute" / "results" / execution_id
    (results / "outputs").mkdir(parents=True)
    (results / "stdout").write_bytes(b"x" * size)
    (results / "outputs" / "data.bin").write_bytes(b"y" * size)
    archive = tmp_path / "compute" / "published" / f"{execution_id}.tar.gz"
    archive.parent.mkdir(parents=True, exist_ok=True)
    archive.write_bytes(b"z" * size)
    return results, archive


def execution_in(store: ExecutionStore, state: State) -> str:
    execution = make_execution(make_job())
    store.create(execution, State.BidAccepted)
    if state is not State.BidAccepted:
        assert store.update_state(execution.id, state, expected=[State.BidAccepted])
    return execution.id


async def test_results_of_executions_ended_longer_ago_than_the_retention_are_removed(
    tmp_path: Path, store: ExecutionStore, retention: ResultsRetention, clock: Clock
) -> None:
    done = execution_in(store, State.Completed)
    failed = execution_in(store, State.Failed)
    results, archive = leave_results(tmp_path, done)
    failed_results, failed_archive = leave_results(tmp_path, failed)

    clock.now_s += RETENTION_S - HOUR_S
    report = await retention.sweep()
    assert report.removed_count == 0
    assert results.is_dir() and archive.is_file()
    assert report.kept.results_count == 2 and report.kept.published_count == 2
    assert report.kept.results_bytes == 400 and report.kept.published_bytes == 200

    clock.now_s += 2 * HOUR_S
    report = await retention.sweep()
    assert report.removed_count == 4 and report.removed_bytes == 600
    assert not results.exists() and not archive.exists()
    assert not failed_results.exists() and not failed_archive.exists()
    assert retention.kept().results_count == 0 and retention.kept().published_bytes == 0


async def test_results_of_active_executions_are_kept_whatever_their_age(
    tmp_path: Path, store: ExecutionStore, retention: ResultsRetention, clock: Clock
) -> None:
    running = execution_in(store, State.Running)
    queued = execution_in(store, State.BidAccepted)
    publishing = execution_in(store, State.Publishing)
    kept = [leave_results(tmp_path, execution_id) for execution_id in (running, queued, publishing)]

    clock.now_s += 100 * RETENTION_S
    report = await retention.sweep()

    assert report.removed_count == 0
    assert all(results.is_dir() and archive.is_file() for results, archive in kept)
    assert report.kept.results_count == 3


async def test_an_execution_is_kept_for_the_retention_counted_from_when_it_ended(
    tmp_path: Path, store: ExecutionStore, retention: ResultsRetention, clock: Clock
) -> None:
    execution_id = execution_in(store, State.Running)
    results, _ = leave_results(tmp_path, execution_id)
    clock.now_s += 2 * RETENTION_S  # ran for two retentions, then ended "now" (the store's own clock)
    assert store.update_state(execution_id, State.Completed, expected=[State.Running])
    store_end_s = time.time()
    clock.now_s = store_end_s + RETENTION_S - HOUR_S

    assert (await retention.sweep()).removed_count == 0
    clock.now_s = store_end_s + RETENTION_S + HOUR_S
    assert (await retention.sweep()).removed_count == 2
    assert not results.exists()


async def test_leftovers_unknown_to_the_store_go_by_their_age(
    tmp_path: Path, retention: ResultsRetention, clock: Clock
) -> None:
    old, _ = leave_results(tmp_path, "e-from-a-deleted-store")
    half_written = tmp_path / "compute" / "published" / ".e-x.tar.gz.0123abcd.tmp"
    half_written.write_bytes(b"partial")
    stray = tmp_path / "compute" / "published" / "notes.txt"  # not an archive: never touched
    stray.write_text("mine")
    week_ago = clock.now_s - RETENTION_S - HOUR_S
    for path in (old, old.parent.parent / "published" / "e-from-a-deleted-store.tar.gz", half_written):
        os.utime(path, (week_ago, week_ago))
    fresh, fresh_archive = leave_results(tmp_path, "e-fresh-unknown")

    report = await retention.sweep()

    assert report.removed_count == 3
    assert not old.exists() and not half_written.exists()
    assert fresh.is_dir() and fresh_archive.is_file() and stray.is_file()


async def test_zero_retention_keeps_everything_and_starts_no_task(
    tmp_path: Path, store: ExecutionStore, clock: Clock
) -> None:
    keep_all = ResultsRetention(
        store=store, results_dir=tmp_path / "r", published_dir=tmp_path / "p", retention_s=0, clock=clock
    )
    keep_all.start()
    assert keep_all._task is None
    await keep_all.stop()


async def test_the_sweeper_runs_until_stopped(tmp_path: Path, store: ExecutionStore, clock: Clock) -> None:
    done = execution_in(store, State.Completed)
    results, archive = leave_results(tmp_path, done)
    clock.now_s += 2 * RETENTION_S
    sweeper = ResultsRetention(
        store=store,
        results_dir=tmp_path / "compute" / "results",
        published_dir=tmp_path / "compute" / "published",
        retention_s=RETENTION_S,
        sweep_interval_s=0.01,
        clock=clock,
    )
    sweeper.start()
    try:
        deadline = time.monotonic() + 10
        while (results.exists() or archive.exists()) and time.monotonic() < deadline:
            await _tick()
        assert not results.exists() and not archive.exists()
        # Later results are swept by the same task.
        later = execution_in(store, State.Cancelled)
        later_results, _ = leave_results(tmp_path, later)
        clock.now_s += 2 * RETENTION_S
        while later_results.exists() and time.monotonic() < deadline:
            await _tick()
        assert not later_results.exists()
    finally:
        await sweeper.stop()
    await sweeper.stop()  # idempotent


async def test_records_of_executions_ended_longer_ago_than_the_retention_are_pruned(
    store: ExecutionStore, retention: ResultsRetention, clock: Clock
) -> None:
    done = execution_in(store, State.Completed)
    failed = execution_in(store, State.Failed)
    running = execution_in(store, State.Running)

    clock.now_s += RETENTION_S - HOUR_S
    report = await retention.sweep()
    assert report.records.pruned == 0
    assert retention.kept().records_count == 3

    clock.now_s += 2 * HOUR_S
    report = await retention.sweep()

    assert report.records.pruned == 2
    assert store.get(done) is None and store.get(failed) is None
    assert store.get(running) is not None  # active: kept whatever its age
    assert (retention.kept().records_count, retention.kept().records_pruned) == (1, 2)
    assert store.count(State.Completed) == 1  # jobsCompleted counts pruned records too


async def test_a_sweep_prunes_a_bounded_number_of_records_and_the_next_one_goes_on(
    store: ExecutionStore, retention: ResultsRetention, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(expired_records, "BATCH", 2)
    monkeypatch.setattr(expired_records, "MAX_BATCHES", 2)
    ended = [execution_in(store, State.Completed) for _ in range(7)]
    clock.now_s += 2 * RETENTION_S

    first = await retention.sweep()
    second = await retention.sweep()

    assert (first.records.pruned, second.records.pruned) == (4, 3)
    assert all(store.get(execution_id) is None for execution_id in ended)
    assert (await retention.sweep()).records.pruned == 0


async def test_the_kept_view_names_what_agent_debug_shows(
    tmp_path: Path, store: ExecutionStore, retention: ResultsRetention, clock: Clock
) -> None:
    leave_results(tmp_path, execution_in(store, State.Completed))
    execution_in(store, State.Failed)

    await retention.sweep()

    assert retention.kept().to_wire() == {
        "ResultsCount": 1,
        "ResultsBytes": 200,
        "PublishedCount": 1,
        "PublishedBytes": 100,
        "IpfsPinsCount": 0,
        "RecordsCount": 2,
        "RecordsPruned": 0,
    }


def test_from_config_uses_the_data_dir_and_compute_results_retention(tmp_path: Path, store: ExecutionStore) -> None:
    config = BacalhauConfig.model_validate({"DataDir": str(tmp_path), "Compute": {"Results": {"Retention": "2h"}}})
    sweeper = ResultsRetention.from_config(config, store=store)
    assert sweeper.retention_s == 2 * HOUR_S
    assert sweeper.sweep_interval_s == 720.0  # a tenth of the retention, at most an hour
    assert BacalhauConfig().compute.results.retention_s == RETENTION_S


async def _tick() -> None:
    await asyncio.sleep(0.01)
