"""The `local` input source: allow-listed host paths, bound in place, read-only unless granted `:rw`."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bacalhau.compute.storage.allowlist import AllowList
from bacalhau.compute.storage.local import LocalStorage
from bacalhau.models.errors import ConfigurationError, StorageError
from bacalhau.models.job import InputSource, SpecConfig


def local(path: str | Path, **params: object) -> InputSource:
    return InputSource(
        Source=SpecConfig(Type="local", Params={"SourcePath": str(path), **params}), Target="/data", Alias="in"
    )


@pytest.fixture
def shared(tmp_path: Path) -> Path:
    folder = tmp_path / "shared"
    (folder / "sub").mkdir(parents=True)
    (folder / "sub" / "file.txt").write_text("x")
    return folder


async def test_allowlisted_folder_is_bound_in_place_read_only(tmp_path: Path, shared: Path) -> None:
    storage = LocalStorage(allow_listed_paths=[str(shared)])

    storage.validate(local(shared))
    prepared = await storage.prepare(local(shared / "sub"), tmp_path / "work")

    assert prepared.host_path == (shared / "sub").resolve()
    assert prepared.read_only is True
    assert prepared.owned is False


async def test_path_outside_the_allow_list_is_refused_with_bacalhaus_message(tmp_path: Path, shared: Path) -> None:
    other = tmp_path / "other"
    other.mkdir()
    storage = LocalStorage(allow_listed_paths=[str(shared)])

    with pytest.raises(ConfigurationError) as caught:
        storage.validate(local(other))

    assert caught.value.message == f"volume {other} is not allowlisted"
    assert "Compute.AllowListedLocalPaths" in caught.value.hint
    with pytest.raises(ConfigurationError, match="is not allowlisted"):
        await storage.prepare(local(other), tmp_path / "work")


def test_empty_allow_list_refuses_everything(shared: Path) -> None:
    with pytest.raises(ConfigurationError, match="is not allowlisted"):
        LocalStorage(allow_listed_paths=[]).validate(local(shared))


@pytest.mark.parametrize("read_write", [True, "true", "TRUE"])
def test_read_write_needs_an_rw_entry(shared: Path, read_write: object) -> None:
    with pytest.raises(ConfigurationError) as caught:
        LocalStorage(allow_listed_paths=[f"{shared}:ro"]).validate(local(shared, ReadWrite=read_write))
    assert caught.value.message == f"volume {shared} is not granted write access"

    LocalStorage(allow_listed_paths=[f"{shared}:rw"]).validate(local(shared, ReadWrite=read_write))


async def test_rw_entry_binds_writable_only_when_asked(tmp_path: Path, shared: Path) -> None:
    storage = LocalStorage(allow_listed_paths=[f"{shared}:rw"])

    writable = await storage.prepare(local(shared, ReadWrite=True), tmp_path)
    read_only = await storage.prepare(local(shared), tmp_path)

    assert writable.read_only is False
    assert read_only.read_only is True


def test_symlink_pointing_out_of_the_allowed_folder_is_refused(tmp_path: Path, shared: Path) -> None:
    secret = tmp_path / "secret"
    secret.mkdir()
    (shared / "escape").symlink_to(secret)
    storage = LocalStorage(allow_listed_paths=[str(shared)])

    with pytest.raises(ConfigurationError, match="is not allowlisted"):
        storage.validate(local(shared / "escape"))


def test_dotdot_out_of_the_allowed_folder_is_refused(tmp_path: Path, shared: Path) -> None:
    (tmp_path / "secret").mkdir()
    storage = LocalStorage(allow_listed_paths=[str(shared)])

    with pytest.raises(ConfigurationError, match="is not allowlisted"):
        storage.validate(local(f"{shared}/../secret"))
    storage.validate(local(f"{shared}/sub/../sub"))  # `..` that stays inside is fine


def test_single_star_stays_in_one_segment_and_double_star_crosses(tmp_path: Path, shared: Path) -> None:
    one = AllowList([f"{tmp_path}/*"])
    assert one.lookup(str(shared)) == (True, False)
    assert one.lookup(str(shared / "sub"))[0] is False

    many = AllowList([f"{tmp_path}/**:rw"])
    assert many.lookup(str(shared / "sub" / "file.txt")) == (True, True)

    braces = AllowList([f"{tmp_path}/{{shared,other}}/sub"])
    assert braces.lookup(str(shared / "sub" / "file.txt"))[0] is True


def test_relative_allow_list_entries_are_ignored(shared: Path) -> None:
    allow = AllowList(["relative/path", f"{shared}:rw"])

    assert allow.invalid == ["relative/path"]
    assert allow.lookup(str(shared)) == (True, True)


async def test_missing_path_fails_unless_it_may_be_created(tmp_path: Path, shared: Path) -> None:
    storage = LocalStorage(allow_listed_paths=[f"{shared}:rw"])
    missing = shared / "new"

    with pytest.raises(StorageError, match="does not exist"):
        storage.validate(local(missing))
    with pytest.raises(StorageError, match="does not exist"):
        await storage.prepare(local(missing, CreateAs="dir"), tmp_path)  # CreateAs needs ReadWrite
    with pytest.raises(StorageError, match="does not exist"):
        await storage.prepare(local(missing, ReadWrite=True), tmp_path)  # noCreate is the default


@pytest.mark.parametrize(("create_as", "is_dir"), [("dir", True), ("DIR", True), ("file", False)])
async def test_create_as_makes_the_missing_path(tmp_path: Path, shared: Path, create_as: str, is_dir: bool) -> None:
    storage = LocalStorage(allow_listed_paths=[f"{shared}:rw"])
    target = shared / "made" / "here"

    prepared = await storage.prepare(local(target, ReadWrite=True, CreateAs=create_as), tmp_path)

    assert prepared.host_path == target.resolve()
    assert target.is_dir() is is_dir
    assert target.exists()


def test_invalid_create_as_is_refused(shared: Path) -> None:
    with pytest.raises(StorageError, match="invalid CreateAs"):
        LocalStorage(allow_listed_paths=[str(shared)]).validate(local(shared, CreateAs="maybe"))


async def test_cleanup_never_deletes_the_users_folder(tmp_path: Path, shared: Path) -> None:
    storage = LocalStorage(allow_listed_paths=[f"{shared}:rw"])
    prepared = await storage.prepare(local(shared, ReadWrite=True), tmp_path)

    await storage.cleanup(prepared)

    assert (shared / "sub" / "file.txt").read_text() == "x"


def test_allow_list_entry_that_is_a_symlink_allows_its_target(tmp_path: Path, shared: Path) -> None:
    link = tmp_path / "link"
    os.symlink(shared, link)

    assert AllowList([str(link)]).lookup(str(shared / "sub"))[0] is True
    assert AllowList([str(shared)]).lookup(str(link / "sub"))[0] is True
