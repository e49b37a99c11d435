"""Results folders made ahead (compute/blank_results.py), with its real thread on real folders."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bacalhau.compute.blank_results import BlankResults


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
    assert sorted(p.name for p in taken.iterdir()) == ["stderr", "stdout"]
    assert all((taken / name).stat().st_size == 0 for name in ("stdout", "stderr"))
    assert not (taken / "exitCode").exists(), "an exit code is what tells a restarted node the task ended"
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


def test_an_unwritable_spare_folder_falls_back_to_the_callers_own_folders(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a folder")
    blanks = BlankResults(tmp_path / "file" / "spare", keep=2)
    try:
        for n in range(3):
            assert not blanks.take(tmp_path / f"e-{n}")
            time.sleep(0.05)
        assert blanks.ready() == 0
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
