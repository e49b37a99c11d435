"""`config set` writes the data dir's config.yaml; `config list` shows the effective values."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from bacalhau.cli.main import cli


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("BACALHAU_DIR", str(tmp_path))
    for name in ("BACALHAU_API_PORT", "BACALHAU_API_HOST"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def test_config_set_writes_typed_values_with_canonical_keys(data_dir: Path) -> None:
    runner = CliRunner()
    assert runner.invoke(cli, ["config", "set", "api.port", "4321"]).exit_code == 0
    assert runner.invoke(cli, ["config", "set", "Compute.Orchestrators", "nats://a:4222", "nats://b:4222"]).exit_code == 0
    written = yaml.safe_load((data_dir / "config.yaml").read_text())
    assert written["API"]["Port"] == 4321
    assert written["Compute"]["Orchestrators"] == ["nats://a:4222", "nats://b:4222"]


def test_config_set_refuses_unknown_keys(data_dir: Path) -> None:
    result = CliRunner().invoke(cli, ["config", "set", "API.Nope", "1"])
    assert result.exit_code == 1 and "unknown config key" in result.stderr
    assert not (data_dir / "config.yaml").exists()


def test_config_list_shows_the_file_values(data_dir: Path) -> None:
    CliRunner().invoke(cli, ["config", "set", "API.Port", "4321"])
    result = CliRunner().invoke(cli, ["config", "list"])
    assert result.exit_code == 0
    line = next(line for line in result.stdout.splitlines() if line.split()[:1] == ["API.Port"])
    assert line.split()[1] == "4321"


@pytest.mark.parametrize("name", ["BACALHAU_IPFS_CONNECT", "BACALHAU_NODE_IPFS_CONNECT"])
def test_legacy_ipfs_connect_env_sets_ipfs_connect(data_dir: Path, monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    monkeypatch.setenv(name, "/ip4/127.0.0.1/tcp/5001")
    result = CliRunner().invoke(cli, ["config", "list", "--output", "json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["IPFS"]["Connect"] == "/ip4/127.0.0.1/tcp/5001"
