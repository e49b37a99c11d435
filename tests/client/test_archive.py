"""Unpacking downloaded results into Bacalhau's `job get` layout, safely."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from bacalhau.client.archive import ResultMerger, safe_extract
from bacalhau.models.errors import BacalhauError


def make_archive(path: Path, files: dict[str, str], *, prefix: str = "") -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for name, content in files.items():
            data = content.encode()
            info = tarfile.TarInfo(prefix + name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def add_link(path: Path, name: str, target: str, *, symlink: bool = True) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        info = tarfile.TarInfo(name)
        info.type = tarfile.SYMTYPE if symlink else tarfile.LNKTYPE
        info.linkname = target
        tar.addfile(info)
    return path


RESULT = {"stdout": "hello\n", "stderr": "", "exitCode": "0", "outputs/data.txt": "42"}


def test_one_result_lands_at_the_top_of_the_output_folder(tmp_path: Path) -> None:
    out = tmp_path / "out"
    ResultMerger(out).add(make_archive(tmp_path / "a.tar.gz", RESULT), "a")
    assert (out / "stdout").read_text() == "hello\n"
    assert (out / "exitCode").read_text() == "0"
    assert (out / "outputs" / "data.txt").read_text() == "42"
    assert sorted(p.name for p in out.iterdir()) == ["exitCode", "outputs", "stderr", "stdout"]


def test_a_wrapping_folder_in_the_archive_is_looked_through(tmp_path: Path) -> None:
    out = tmp_path / "out"
    ResultMerger(out).add(make_archive(tmp_path / "a.tar.gz", RESULT, prefix="e-123/"), "a")
    assert (out / "stdout").read_text() == "hello\n"


def test_several_results_append_stdout_and_keep_a_failing_exit_code(tmp_path: Path) -> None:
    out = tmp_path / "out"
    merger = ResultMerger(out)
    merger.add(make_archive(tmp_path / "a.tar.gz", {"stdout": "one\n", "exitCode": "0"}), "a")
    merger.add(make_archive(tmp_path / "b.tar.gz", {"stdout": "two\n", "exitCode": "3"}), "b")
    assert (out / "stdout").read_text() == "one\ntwo\n"
    assert (out / "exitCode").read_text() == "3"


def test_colliding_result_files_suggest_raw(tmp_path: Path) -> None:
    merger = ResultMerger(tmp_path / "out")
    merger.add(make_archive(tmp_path / "a.tar.gz", {"outputs/x": "1"}), "a")
    with pytest.raises(BacalhauError) as info:
        merger.add(make_archive(tmp_path / "b.tar.gz", {"outputs/x": "2"}), "b")
    assert "--raw" in info.value.hint


def test_existing_files_are_not_overwritten(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "stdout").write_text("mine")
    with pytest.raises(BacalhauError, match="refusing to overwrite"):
        ResultMerger(out).add(make_archive(tmp_path / "a.tar.gz", RESULT), "a")
    assert (out / "stdout").read_text() == "mine"


def test_overwrite_replaces_existing_files(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "stdout").write_text("mine")
    ResultMerger(out, overwrite=True).add(make_archive(tmp_path / "a.tar.gz", RESULT), "a")
    assert (out / "stdout").read_text() == "hello\n"


def test_raw_keeps_each_result_in_its_own_folder(tmp_path: Path) -> None:
    out = tmp_path / "out"
    merger = ResultMerger(out, raw=True)
    merger.add(make_archive(tmp_path / "a.tar.gz", {"stdout": "one"}), "e-1")
    merger.add(make_archive(tmp_path / "b.tar.gz", {"stdout": "two"}), "e-2")
    assert (out / "raw" / "e-1" / "stdout").read_text() == "one"
    assert (out / "raw" / "e-2" / "stdout").read_text() == "two"


@pytest.mark.parametrize("name", ["../escape.txt", "/etc/evil", "a/../../escape.txt"])
def test_members_escaping_the_folder_are_refused(tmp_path: Path, name: str) -> None:
    out = tmp_path / "out"
    with pytest.raises(BacalhauError, match="outside the output folder"):
        ResultMerger(out).add(make_archive(tmp_path / "a.tar.gz", {name: "x"}), "a")
    assert not (tmp_path / "escape.txt").exists()


def test_links_pointing_outside_are_refused(tmp_path: Path) -> None:
    with pytest.raises(BacalhauError, match="outside the output folder"):
        safe_extract(add_link(tmp_path / "a.tar.gz", "link", "../../etc/passwd"), tmp_path / "dest")
    with pytest.raises(BacalhauError, match="outside the output folder"):
        safe_extract(add_link(tmp_path / "b.tar.gz", "hard", "/etc/passwd", symlink=False), tmp_path / "dest")


def test_a_non_archive_is_a_clear_error(tmp_path: Path) -> None:
    bogus = tmp_path / "a.tar.gz"
    bogus.write_text("<html>not found</html>")
    with pytest.raises(BacalhauError, match="not a valid tar archive"):
        ResultMerger(tmp_path / "out").add(bogus, "a")
