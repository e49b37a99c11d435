"""`config set` writes the data dir's config.yaml (or `--config FILE`); `config list` shows the effective values.

`config set` follows Bacalhau's cmd/cli/config/set.go and set_test.go: `Key=value` (or the deprecated
`Key value...`), values typed by the key, `-c/--config` naming one existing YAML file to write.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner, Result

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
    assert result.exit_code == 1 and '"api.nope" is not a valid config key' in result.stderr
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


def _set(*args: str) -> Result:
    return CliRunner().invoke(cli, ["config", "set", *args])


def _written(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def test_config_set_key_equals_value_is_the_primary_form(data_dir: Path) -> None:
    result = _set("api.host=1.1.1.1")
    assert result.exit_code == 0, result.output
    assert result.stdout == f"Writing config to {data_dir / 'config.yaml'}\n"
    assert _written(data_dir / "config.yaml") == {"API": {"Host": "1.1.1.1"}}


def test_config_set_space_separated_form_is_deprecated_but_works(data_dir: Path) -> None:
    result = _set("api.port", "5678")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("DEPRECATED: use key=value instead of space-separated key value\n")
    assert _written(data_dir / "config.yaml") == {"API": {"Port": 5678}}


def test_config_set_a_key_alone_is_an_error(data_dir: Path) -> None:
    result = _set("api.port")
    assert result.exit_code == 1 and "must provide both key and value, or key=value" in result.stderr


def test_config_set_is_additive(data_dir: Path) -> None:
    assert _set("api.host=127.0.0.1").exit_code == 0
    assert _set("api.port=1234").exit_code == 0
    assert _written(data_dir / "config.yaml") == {"API": {"Host": "127.0.0.1", "Port": 1234}}


@pytest.mark.parametrize(
    ("args", "key", "value"),
    [
        (["compute.orchestrators=nats://a:1,nats://b:2"], ("Compute", "Orchestrators"), ["nats://a:1", "nats://b:2"]),
        (["compute.orchestrators", "nats://a:1", "nats://b:2"], ("Compute", "Orchestrators"), ["nats://a:1", "nats://b:2"]),
        (["labels=foo=bar,baz=buz"], ("Labels",), {"foo": "bar", "baz": "buz"}),
        (["labels", "foo=bar,baz=buz"], ("Labels",), {"foo": "bar", "baz": "buz"}),
        (["webui.enabled=T"], ("WebUI", "Enabled"), True),
        (["webui.enabled=0"], ("WebUI", "Enabled"), False),
        (["api.port=+42", "ignored"], ("API", "Port"), 42),
    ],
)
def test_config_set_types_the_value_by_its_key(data_dir: Path, args: list[str], key: tuple[str, ...], value: Any) -> None:
    result = _set(*args)
    assert result.exit_code == 0, result.output
    node = _written(data_dir / "config.yaml")
    for part in key:
        node = node[part]
    assert node == value


@pytest.mark.parametrize(
    ("arg", "message"),
    [
        ("invalid.key=value", '"invalid.key" is not a valid config key'),
        ("api.port=x", 'config key: "api.port" expects an integer value, received: "x"'),
        ("webui.enabled=yes", 'config key: "webui.enabled" expects a boolean value, received: "yes"'),
        ("labels=foo", "invalid format [foo]: expected 'key=value', but found no '=' in 'foo'"),
        ("labels=a=b=c", "found multiple '=' in 'a=b=c'"),
        ("logging.level=loud", "invalid log-level"),
    ],
)
def test_config_set_refuses_bad_keys_and_values_without_writing(data_dir: Path, arg: str, message: str) -> None:
    result = _set(arg)
    assert result.exit_code == 1 and message in result.stderr, result.output
    assert not (data_dir / "config.yaml").exists()


def test_config_set_makes_data_dir_absolute(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(data_dir)
    assert _set("datadir=./elsewhere").exit_code == 0
    assert _written(data_dir / "config.yaml") == {"DataDir": str(data_dir / "elsewhere")}


@pytest.mark.parametrize("before_verb", [False, True])
def test_config_set_with_config_writes_that_file(data_dir: Path, tmp_path: Path, before_verb: bool) -> None:
    target = tmp_path / "explicit_config.yaml"
    target.write_text("")
    flag = ["--config", str(target)]
    args = [*flag, "config", "set", "api.host=2.2.2.2"] if before_verb else ["config", "set", *flag, "api.host=2.2.2.2"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert result.stdout == f"Writing config to {target}\n"
    assert _written(target) == {"API": {"Host": "2.2.2.2"}}
    assert not (data_dir / "config.yaml").exists()


def test_config_set_with_config_keeps_the_files_other_keys(data_dir: Path, tmp_path: Path) -> None:
    target = tmp_path / "c.yml"
    target.write_text("API:\n  Host: 127.0.0.1\n")
    assert _set("-c", str(target), "api.port=1234").exit_code == 0
    assert _written(target) == {"API": {"Host": "127.0.0.1", "Port": 1234}}


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--config", "{tmp}/missing.yaml"], "specified configuration file doesn't exist: {tmp}/missing.yaml"),
        (["-c", "{tmp}/notes.txt"], "config file must end with '.yaml' or '.yml'"),
        (["-c", "API.Port=1"], "config file must end with '.yaml' or '.yml'"),
        (["-c", "{tmp}/a.yaml", "-c", "{tmp}/b.yaml"], "single config file can be set"),
    ],
)
def test_config_set_config_flag_names_one_existing_yaml_file(
    data_dir: Path, tmp_path: Path, flags: list[str], message: str
) -> None:
    for name in ("a.yaml", "b.yaml", "notes.txt"):
        (tmp_path / name).write_text("")
    result = _set(*[flag.format(tmp=tmp_path) for flag in flags], "api.port=1")
    assert result.exit_code == 1 and message.format(tmp=tmp_path) in result.stderr, result.output
    assert not (tmp_path / "missing.yaml").exists() and (tmp_path / "a.yaml").read_text() == ""
    assert not (data_dir / "config.yaml").exists()
