"""The results archive shared by the local and s3 publishers."""

from __future__ import annotations

import tarfile
from pathlib import Path

from bacalhau.compute.publishers.archive import write_archive


def results_folder(root: Path) -> Path:
    (root / "outputs" / "nested").mkdir(parents=True)
    (root / "stdout").write_text("hello\n")
    (root / "exitCode").write_text("0")
    (root / "outputs" / "nested" / "deep.txt").write_text("deep")
    return root


def test_entries_sit_at_the_top_of_the_archive(tmp_path: Path) -> None:
    target = tmp_path / "a.tar.gz"
    write_archive(results_folder(tmp_path / "results"), target)

    with tarfile.open(target) as archive:
        names = archive.getnames()
    assert names == ["exitCode", "outputs", "outputs/nested", "outputs/nested/deep.txt", "stdout"]
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporary file left


def test_the_same_results_always_pack_to_the_same_bytes(tmp_path: Path) -> None:
    results = results_folder(tmp_path / "results")
    write_archive(results, tmp_path / "first.tar.gz")
    write_archive(results, tmp_path / "second.tar.gz")

    first = (tmp_path / "first.tar.gz").read_bytes()
    assert first == (tmp_path / "second.tar.gz").read_bytes()
    # The gzip header's MTIME (bytes 4-7) is zero and no file name is stored (FLG, byte 3, has no FNAME bit):
    # nothing in the archive depends on when it was written.
    assert first[4:8] == b"\0\0\0\0" and not first[3] & 0x08
