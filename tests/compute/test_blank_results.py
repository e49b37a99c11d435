"""Results folders made ahead (compute/blank_results.py), with its real thread on real folders."""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bacalhau.compute.blank_results import BlankResults
from bacalhau.compute.runner import written_exit_code


def wait_ready(blanks: BlankResults, n: int, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while blanks.ready() < n:
        assert time.monotonic() < deadline, f"{blanks.ready()} blanks ready, wanted {n}"
        time.sleep(0.01)


@pytest.fixture
def blanks(tmp_path: Path) -> Iterator[BlankResults]:
    made = BlankResults(tmp_path / "results-spare", keep=3)
    yield made
    made.close()


def test_the_first_take_starts_the_thread_that_then_keeps_blanks_ready(tmp_path: Path, blanks: BlankResults) -> None:
    (tmp_path / "results").mkdir()
    assert blanks.ready() == 0 and not (tmp_path / "results-spare").exists(), "nothing is made before the first use"

    blanks.take(tmp_path / "results" / "e-1")  # finds a blank only if the new thread was that quick
    wait_ready(blanks, 3)
    assert blanks.take(tmp_path / "results" / "e-2")

    taken = tmp_path / "results" / "e-2"
    assert sorted(p.name for p in taken.iterdir()) == ["exitCode", "stderr", "stdout"]
    assert all((taken / name).stat().st_size == 0 for name in ("stdout", "stderr", "exitCode"))
    # What tells a restarted node that the task ended: an empty one says nothing.
    assert written_exit_code(taken) is None
    assert blanks.take(tmp_path / "results" / "e-3")  # half of the 3 gone (1 left): the thread is woken
    wait_ready(blanks, 3)  # topped up again
    assert len(list((tmp_path / "results-spare").iterdir())) == 3


def test_a_leftover_folder_with_content_is_never_reused(tmp_path: Path, blanks: BlankResults) -> None:
    blanks.take(tmp_path / "warm-up")
    wait_ready(blanks, 3)
    leftover = tmp_path / "e-1"
    leftover.mkdir()
    (leftover / "stdout").write_text("an earlier attempt's output")

    assert not blanks.take(leftover)  # the caller then replaces the folder itself

    assert (leftover / "stdout").read_text() == "an earlier attempt's output"
    wait_ready(blanks, 3)
    assert len(list((tmp_path / "results-spare").iterdir())) == 3, "the blank that could not move is gone"


def test_what_an_earlier_process_left_is_deleted_before_any_blank_is_made(tmp_path: Path) -> None:
    old = tmp_path / "results-spare" / "0"
    old.mkdir(parents=True)
    (old / "stdout").write_text("someone else's")
    blanks = BlankResults(tmp_path / "results-spare", keep=2)
    try:
        blanks.take(tmp_path / "x")
        wait_ready(blanks, 2)
        assert blanks.take(tmp_path / "e-1") and blanks.take(tmp_path / "e-2")
        assert (tmp_path / "e-1" / "stdout").read_text() == "" and (tmp_path / "e-2" / "stdout").read_text() == ""
    finally:
        blanks.close()


def test_an_unwritable_spare_folder_falls_back_to_the_callers_own_folders(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "file").write_text("not a folder")
    blanks = BlankResults(tmp_path / "file" / "spare", keep=2)
    try:
        for n in range(3):
            assert not blanks.take(tmp_path / f"e-{n}")
            deadline = time.monotonic() + 10
            while "cannot make blank results folders" not in caplog.text:
                assert time.monotonic() < deadline, "the thread never said why it makes none"
                time.sleep(0.01)
        assert blanks.ready() == 0
        assert caplog.text.count("cannot make blank results folders") == 1, "said once, not at every take"
    finally:
        blanks.close()


def blank_threads() -> int:
    return sum(1 for thread in threading.enumerate() if thread.name == "blank-results" and thread.is_alive())


def test_close_stops_the_thread(tmp_path: Path) -> None:
    before = blank_threads()
    blanks = BlankResults(tmp_path / "spare", keep=1)
    blanks.take(tmp_path / "x")
    wait_ready(blanks, 1)
    assert blank_threads() == before + 1

    blanks.close()

    assert blank_threads() == before


def test_a_taken_folder_is_dated_when_taken_not_when_made(tmp_path: Path, blanks: BlankResults) -> None:
    blanks.take(tmp_path / "warm-up")
    wait_ready(blanks, 3)
    for blank in (tmp_path / "results-spare").iterdir():  # made long ago, as on an idle node
        for path in (blank, blank / "stdout", blank / "stderr", blank / "exitCode"):
            os.utime(path, (1_000_000, 1_000_000))

    assert blanks.take(tmp_path / "results" / "e-1")  # its parent is made too

    taken = tmp_path / "results" / "e-1"
    assert all(time.time() - p.stat().st_mtime < 60
               for p in (taken, taken / "stdout", taken / "stderr", taken / "exitCode"))


def test_a_results_folder_on_another_filesystem_turns_the_spares_off(
    tmp_path: Path, blanks: BlankResults, caplog: pytest.LogCaptureFixture
) -> None:
    blanks.take(tmp_path / "warm-up")
    wait_ready(blanks, 3)
    elsewhere = Path("/dev/shm") / f"results-{os.getpid()}-{time.monotonic_ns()}"  # tmpfs: a rename fails (EXDEV)
    try:
        assert not blanks.take(elsewhere)
        assert not blanks.take(tmp_path / "e-2"), "off: every execution makes its own folder"
        assert "no longer made ahead" in caplog.text
    finally:
        shutil.rmtree(elsewhere, ignore_errors=True)
