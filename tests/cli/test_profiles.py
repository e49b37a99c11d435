"""Profiles: the on-disk layout Bacalhau v1.9 uses, which profile a command picks, and the profile verbs."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from bacalhau.cli.context import CliContext
from bacalhau.cli.main import cli
from bacalhau.cli.profile.loader import endpoint_url, explicitly_set
from bacalhau.cli.profile.store import Profile, ProfileStore, check_go_duration
from bacalhau.models.errors import ConfigurationError, NotFoundError

# A profile file as Bacalhau's yaml.v3 writes it (four-space indents, only the fields that are set).
GO_WRITTEN = """endpoint: https://prod.example.com:443
description: Production cluster
timeout: 60s
auth:
    token: tok_secrettoken123xyz
tls:
    insecure: true
"""


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("BACALHAU_DIR", str(tmp_path))
    for name in ("BACALHAU_API_PORT", "BACALHAU_API_HOST", "BACALHAU_PROFILE", "BACALHAU_HTTPS"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


@pytest.fixture
def store(data_dir: Path) -> ProfileStore:
    return ProfileStore.in_data_dir(data_dir)


def invoke(*args: str, input: str | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), input=input)
    return result.exit_code, result.stdout, result.stderr


# -- the store ------------------------------------------------------------------------------------------


def test_a_file_written_by_bacalhau_loads_and_saves_back_identically(store: ProfileStore) -> None:
    os.makedirs(store.directory)
    Path(store.path("prod")).write_text(GO_WRITTEN)
    profile = store.load("prod")
    assert profile == Profile(endpoint="https://prod.example.com:443", description="Production cluster",
                              timeout="60s", token="tok_secrettoken123xyz", insecure=True)
    store.save("prod", profile)
    assert Path(store.path("prod")).read_text() == GO_WRITTEN


def test_save_writes_only_the_fields_set_in_a_private_file(store: ProfileStore, data_dir: Path) -> None:
    store.save("dev", Profile(endpoint="http://localhost:1234"))
    path = data_dir / "profiles" / "dev.yaml"
    assert path.read_text() == "endpoint: http://localhost:1234\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert not [p for p in (data_dir / "profiles").iterdir() if p.name.startswith(".")]  # no temp file left


def test_select_makes_current_a_relative_symlink_to_the_file(store: ProfileStore, data_dir: Path) -> None:
    store.save("prod", Profile(endpoint="https://prod.example.com"))
    assert store.current() == ""
    store.select("prod")
    assert os.readlink(data_dir / "profiles" / "current") == "prod.yaml"
    assert store.current() == "prod"


def test_select_of_an_unknown_profile_changes_nothing(store: ProfileStore) -> None:
    store.save("prod", Profile(endpoint="https://prod.example.com"))
    store.select("prod")
    with pytest.raises(NotFoundError, match='profile "nope" not found'):
        store.select("nope")
    assert store.current() == "prod"


def test_names_are_sorted_files_without_the_current_link_or_other_files(store: ProfileStore) -> None:
    for name in ("zeta", "alpha", "mid"):
        store.save(name, Profile(endpoint="h:1"))
    store.select("mid")
    Path(store.directory, "notes.txt").write_text("x")
    os.mkdir(os.path.join(store.directory, "dir.yaml"))
    assert store.names() == ["alpha", "mid", "zeta"]


def test_deleting_the_current_profile_removes_the_current_link(store: ProfileStore) -> None:
    store.save("a", Profile(endpoint="h:1"))
    store.save("b", Profile(endpoint="h:2"))
    store.select("a")
    store.delete("a")
    assert store.names() == ["b"]
    assert store.current() == ""
    assert not os.path.lexists(store.current_path)
    with pytest.raises(NotFoundError):
        store.delete("a")


def test_names_cannot_escape_the_profiles_directory(store: ProfileStore, data_dir: Path) -> None:
    store.save("../../evil", Profile(endpoint="h:1"))
    assert (data_dir / "profiles" / "evil.yaml").exists()
    store.save("a..b", Profile(endpoint="h:1"))
    assert (data_dir / "profiles" / "a_b.yaml").exists()
    with pytest.raises(ConfigurationError, match="profile name cannot be empty"):
        store.save("  ", Profile(endpoint="h:1"))


def test_save_refuses_a_missing_endpoint_or_a_bad_timeout(store: ProfileStore) -> None:
    with pytest.raises(ConfigurationError, match="invalid profile: endpoint is required"):
        store.save("x", Profile())
    with pytest.raises(ConfigurationError, match='invalid timeout "soon": time: invalid duration "soon"'):
        store.save("x", Profile(endpoint="h:1", timeout="soon"))
    assert store.names() == []


@pytest.mark.parametrize(("text", "seconds"), [("30s", 30.0), ("1m30s", 90.0), ("1.5h", 5400.0), ("500ms", 0.5),
                                               ("0", 0.0), ("-2s", -2.0)])
def test_go_durations(text: str, seconds: float) -> None:
    assert check_go_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize(("text", "message"), [("30", 'time: missing unit in duration "30"'),
                                               ("", 'time: invalid duration ""'),
                                               ("3x", 'time: invalid duration "3x"'),
                                               ("s", 'time: invalid duration "s"')])
def test_bad_go_durations_are_worded_as_go_does(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        check_go_duration(text)


# -- endpoints and precedence ---------------------------------------------------------------------------


@pytest.mark.parametrize(("endpoint", "url"), [
    ("https://prod.example.com:443", "https://prod.example.com:443"),
    ("https://prod.example.com", "https://prod.example.com"),
    ("http://h:9000/some/path/", "http://h:9000"),
    ("localhost:4000", "http://localhost:4000"),
    ("10.0.0.7", "http://10.0.0.7:1234"),
    ("[::1]:5000", "http://[::1]:5000"),
])
def test_endpoint_forms(endpoint: str, url: str) -> None:
    assert endpoint_url(endpoint) == url


@pytest.mark.parametrize("endpoint", ["ftp://h:1", "http://", "h:notaport", ""])
def test_unusable_endpoints_are_refused(endpoint: str) -> None:
    with pytest.raises(ConfigurationError, match="invalid endpoint"):
        endpoint_url(endpoint)


def test_only_addresses_away_from_the_defaults_count_as_explicit() -> None:
    assert not explicitly_set(None, None)
    assert not explicitly_set("0.0.0.0", 1234)
    assert explicitly_set("127.0.0.1", None)
    assert explicitly_set(None, 4000)


def _saved(store: ProfileStore) -> None:
    store.save("current-profile", Profile(endpoint="current.example.com:1001"))
    store.save("env-profile", Profile(endpoint="env.example.com:1002"))
    store.save("flag-profile", Profile(endpoint="flag.example.com:1003"))
    store.select("current-profile")


def test_flag_beats_env_beats_current(store: ProfileStore, monkeypatch: pytest.MonkeyPatch) -> None:
    _saved(store)
    assert CliContext().api_target().base_url == "http://current.example.com:1001"
    monkeypatch.setenv("BACALHAU_PROFILE", "env-profile")
    assert CliContext().api_target().base_url == "http://env.example.com:1002"
    target = CliContext(profile="flag-profile").api_target()
    assert (target.base_url, target.profile) == ("http://flag.example.com:1003", "flag-profile")


def test_an_explicit_api_address_beats_any_profile(store: ProfileStore, data_dir: Path) -> None:
    _saved(store)
    target = CliContext(api_host="10.1.1.1", profile="flag-profile").api_target()
    assert (target.base_url, target.host, target.port) == (None, "10.1.1.1", None)
    assert CliContext(config_args=("API.Port=4321",)).api_target().port == 4321
    (data_dir / "config.yaml").write_text("API:\n  Port: 5555\n")
    assert CliContext().api_target().port == 5555


def test_the_default_address_given_explicitly_still_lets_the_profile_apply(store: ProfileStore) -> None:
    _saved(store)
    assert CliContext(api_host="0.0.0.0", api_port=1234).api_target().base_url == "http://current.example.com:1001"


def test_without_profiles_the_client_keeps_its_defaults(store: ProfileStore) -> None:
    target = CliContext().api_target()
    assert (target.base_url, target.host, target.port, target.profile) == (None, None, None, "")
    with CliContext().client() as client:
        assert client.base_url == "http://127.0.0.1:1234"
        assert client.timeout_s == 30.0


def test_a_missing_profile_falls_back_to_the_defaults_with_a_warning(
    store: ProfileStore, capsys: pytest.CaptureFixture[str]
) -> None:
    _saved(store)
    target = CliContext(profile="typo").api_target()
    assert target.base_url is None and target.profile == ""
    assert 'Warning: profile "typo" not found' in capsys.readouterr().err


def test_a_profile_sets_timeout_tls_and_token_of_the_client(store: ProfileStore) -> None:
    store.save("secure", Profile(endpoint="https://secure.example.com", timeout="2m", token="abc", insecure=True))
    with CliContext(profile="secure").client() as client:
        assert client.base_url == "https://secure.example.com"
        assert client.timeout_s == 120.0
        assert client.verify_tls is False
        assert client._headers["Authorization"] == "Bearer abc"
    store.save("plain", Profile(endpoint="h:1", timeout="0s"))
    with CliContext(profile="plain").client() as client:
        assert client.timeout_s is None and client.verify_tls is True
        assert "Authorization" not in client._headers


# -- the verbs ------------------------------------------------------------------------------------------


def test_profile_workflow_as_in_bacalhau(data_dir: Path) -> None:
    code, out, _ = invoke("profile", "save", "production", "--endpoint", "https://prod.example.com:443",
                          "--description", "Production cluster", "--timeout", "60s")
    assert code == 0 and out == 'Profile "production" saved\n'
    code, out, _ = invoke("profile", "save", "staging", "--endpoint", "https://staging.example.com:443",
                          "--insecure", "--select")
    assert code == 0 and out == 'Profile "staging" saved\nSwitched to profile "staging"\n'

    code, out, _ = invoke("profile", "list")
    lines = [line.split() for line in out.splitlines()]
    assert lines == [["CURRENT", "NAME", "ENDPOINT", "AUTH"],
                     ["production", "https://prod.example.com:443"],
                     ["*", "staging", "https://staging.example.com:443"]]

    code, out, _ = invoke("profile", "show", "production")
    assert out.splitlines() == ["Name:        production", "Endpoint:    https://prod.example.com:443",
                                "Auth:        none", "TLS:         secure", "Timeout:     60s",
                                "Description: Production cluster"]
    _, out, _ = invoke("profile", "show")
    assert "Name:        staging (current)" in out and "TLS:         insecure" in out and "Timeout:     30s" in out

    assert invoke("profile", "select", "production")[1] == 'Switched to profile "production"\n'
    assert "production (current)" in invoke("profile", "show")[1]

    assert invoke("profile", "save", "staging", "--description", "Updated")[0] == 0
    written = yaml.safe_load((data_dir / "profiles" / "staging.yaml").read_text())
    assert written == {"endpoint": "https://staging.example.com:443", "description": "Updated",
                       "tls": {"insecure": True}}

    assert invoke("profile", "delete", "staging", "--force")[1] == 'Profile "staging" deleted\n'
    _, out, _ = invoke("profile", "list", "--output", "json")
    assert json.loads(out) == [{"current": "*", "name": "production", "endpoint": "https://prod.example.com:443",
                                "auth": ""}]


def test_list_yaml_and_token_marker(store: ProfileStore) -> None:
    store.save("secure", Profile(endpoint="https://secure.example.com:443", token="super-secret-token-12345678"))
    code, out, _ = invoke("profile", "list", "--output", "yaml")
    assert code == 0
    assert yaml.safe_load(out) == [{"current": "", "name": "secure", "endpoint": "https://secure.example.com:443",
                                    "auth": "token"}]


def test_list_without_profiles(data_dir: Path) -> None:
    assert invoke("profile", "list") == (0, "No profiles found\n", "")


def test_show_redacts_the_token_unless_asked(store: ProfileStore) -> None:
    store.save("secure", Profile(endpoint="https://secure.example.com:443", token="super-secret-token-12345678"))
    store.save("short", Profile(endpoint="h:1", token="12345678"))
    _, out, _ = invoke("profile", "show", "secure")
    assert "Auth:        token (supe****5678)" in out and "super-secret-token-12345678" not in out
    assert "Auth:        token (super-secret-token-12345678)" in invoke("profile", "show", "secure", "--show-token")[1]
    assert "Auth:        token (****)" in invoke("profile", "show", "short")[1]


def test_show_picks_arg_then_flag_then_env_then_current(store: ProfileStore, monkeypatch: pytest.MonkeyPatch) -> None:
    _saved(store)
    monkeypatch.setenv("BACALHAU_PROFILE", "env-profile")
    assert "Name:        flag-profile\n" in invoke("profile", "show", "flag-profile")[1]
    assert "Name:        env-profile\n" in invoke("profile", "show")[1]
    assert "Name:        flag-profile\n" in invoke("--profile", "flag-profile", "profile", "show")[1]
    monkeypatch.delenv("BACALHAU_PROFILE")
    assert "Name:        current-profile (current)\n" in invoke("profile", "show")[1]


@pytest.mark.parametrize(("args", "message"), [
    (("profile", "show", "nonexistent"), 'Error: failed to load profile: profile "nonexistent" not found'),
    (("profile", "select", "nonexistent"), 'Error: failed to select profile: profile "nonexistent" not found'),
    (("profile", "delete", "nonexistent", "--force"), 'Error: profile "nonexistent" not found'),
    (("profile", "save", "newprofile"), "Error: endpoint is required when creating a new profile"),
    (("profile", "save", "p", "--endpoint", "h:1", "--timeout", "abc"),
     'Error: failed to save profile: invalid profile: invalid timeout "abc": time: invalid duration "abc"'),
    (("profile", "save", "p", "--endpoint", "ftp://h"), 'Error: failed to save profile: invalid profile: invalid endpoint'),
    (("profile", "show"), "Error: no current profile set"),
])
def test_errors_are_bacalhaus(data_dir: Path, args: tuple[str, ...], message: str) -> None:
    code, out, err = invoke(*args)
    assert code == 1 and out == "", out
    assert message in err
    assert not (data_dir / "profiles" / "p.yaml").exists()


def test_deleting_the_current_profile_asks_first(store: ProfileStore) -> None:
    store.save("cur", Profile(endpoint="h:1"))
    store.select("cur")
    code, out, err = invoke("profile", "delete", "cur", input="n\n")
    assert code == 0 and out.endswith("Delete anyway? [y/N]: Deletion cancelled\n"), err
    assert store.names() == ["cur"]
    code, out, err = invoke("profile", "delete", "cur", input="")
    assert code == 1 and "failed to read response: EOF" in err
    code, out, _ = invoke("profile", "delete", "cur", input="yes\n")
    assert code == 0 and out.endswith('Profile "cur" deleted\n')
    assert store.names() == [] and store.current() == ""


def test_deleting_another_profile_does_not_ask(store: ProfileStore) -> None:
    store.save("cur", Profile(endpoint="h:1"))
    store.save("other", Profile(endpoint="h:2"))
    store.select("cur")
    assert invoke("profile", "delete", "other") == (0, 'Profile "other" deleted\n', "")


def test_update_keeps_unchanged_fields_and_the_token(store: ProfileStore) -> None:
    os.makedirs(store.directory)
    Path(store.path("prod")).write_text(GO_WRITTEN)
    assert invoke("profile", "save", "prod", "--endpoint", "https://new.example.com:443")[0] == 0
    assert store.load("prod") == Profile(endpoint="https://new.example.com:443", description="Production cluster",
                                         timeout="60s", token="tok_secrettoken123xyz", insecure=True)
