"""Identity keys of input sources (locality/keys.py): one key per piece of data, computed from the spec
alone, equal on the compute side (what the input cache indexes) and the orchestrator's (what a job needs)."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest

from bacalhau.compute.storage.input_cache import InputCache
from bacalhau.compute.storage.s3 import S3Storage
from bacalhau.compute.storage.url import UrlStorage
from bacalhau.locality.keys import (
    KIND_IPFS,
    KIND_LOCAL,
    KIND_S3,
    KIND_URL,
    ancestors,
    input_key,
    ipfs_key,
    kind_of,
    local_key,
    s3_key,
    url_key,
)
from bacalhau.models.job import InputSource, SpecConfig
from bacalhau.s3.location import source_location
from http_env import http_server

CID = "bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi"
SHA256_B64 = "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="  # of b"": a well-formed ChecksumSHA256


def url_spec(url: str, *, name: str = "URL", type_: str = "urlDownload") -> SpecConfig:
    return SpecConfig(Type=type_, Params={name: url})


def s3_spec(**params: Any) -> SpecConfig:
    return SpecConfig(Type="s3", Params={"Bucket": "bucket", "Key": "data/file.csv", **params})


def _key(spec: SpecConfig) -> str:
    key = input_key(spec)
    assert key is not None, spec
    return key


# ---- urlDownload -------------------------------------------------------------------------------------


def test_a_url_has_one_key_whatever_spaces_surround_it() -> None:
    url = "https://example.com/data/file.csv"
    keys = {_key(url_spec(url)), _key(url_spec(f"  {url}")), _key(url_spec(f"{url}\n")), _key(url_spec(f"\t{url} "))}
    assert keys == {url_key(url)}
    assert kind_of(url_key(url)) == KIND_URL
    assert re.fullmatch(r"url:[0-9a-f]{64}", url_key(url))


def test_different_urls_have_different_keys() -> None:
    urls = [
        "https://example.com/data/file.csv",
        "https://example.com/data/file.csv?v=2",
        "https://example.com/data/File.csv",
        "http://example.com/data/file.csv",
        "https://mirror.example.com/data/file.csv",
    ]
    assert len({_key(url_spec(u)) for u in urls}) == len(urls)


def test_a_urls_credentials_never_appear_in_its_key() -> None:
    url = "https://alice:hunter2-secret@example.com/data.csv?token=tok-secret-42"
    key = _key(url_spec(url))
    for secret in ("alice", "hunter2", "tok-secret-42", "secret", "example.com", "data.csv"):
        assert secret not in key
    # Credentials are part of the identity (they may change what is served): another password, another key.
    assert key != _key(url_spec("https://alice:other@example.com/data.csv?token=tok-secret-42"))


@pytest.mark.parametrize("name", ["URL", "url", "Url", "uRL"])
def test_the_url_param_name_is_case_insensitive(name: str) -> None:
    assert input_key(url_spec("https://example.com/x", name=name)) == url_key("https://example.com/x")


@pytest.mark.parametrize("type_", ["urlDownload", "urldownload", "URLDOWNLOAD"])
def test_the_url_type_name_is_case_insensitive(type_: str) -> None:
    assert input_key(url_spec("https://example.com/x", type_=type_)) == url_key("https://example.com/x")


@pytest.mark.parametrize("url", ["", "   ", None, 42])
def test_a_url_source_without_a_usable_url_has_no_key(url: object) -> None:
    assert input_key(SpecConfig(Type="urlDownload", Params={"URL": url})) is None
    assert input_key(SpecConfig(Type="urlDownload")) is None


# ---- s3 ----------------------------------------------------------------------------------------------


def test_an_s3_key_is_the_key_of_its_parsed_location() -> None:
    spec = s3_spec(Endpoint="http://127.0.0.1:9000", VersionID="v1", Region="eu-west-1")
    key = _key(spec)
    assert key == s3_key(source_location(spec))
    assert kind_of(key) == KIND_S3
    assert re.fullmatch(r"s3:[0-9a-f]{64}", key)
    assert "bucket" not in key and "data/file.csv" not in key


_OBJECT = {"Endpoint": "http://127.0.0.1:9000", "Key": "data/file.csv", "VersionID": "v1"}
_PREFIX = {"Endpoint": "http://127.0.0.1:9000", "Key": "data/"}


@pytest.mark.parametrize(
    ("base", "changed"),
    [
        (_OBJECT, {"Bucket": "other-bucket"}),
        (_OBJECT, {"Key": "data/other.csv"}),
        (_OBJECT, {"VersionID": "v2"}),
        (_OBJECT, {"VersionID": ""}),
        (_OBJECT, {"Endpoint": "http://127.0.0.1:9001"}),
        (_OBJECT, {"Endpoint": ""}),
        (_OBJECT, {"ChecksumSHA256": SHA256_B64}),
        (_PREFIX, {"Filter": r"\.csv$"}),
    ],
)
def test_s3_keys_differ_by_what_names_the_objects(base: dict[str, str], changed: dict[str, str]) -> None:
    spec, other = s3_spec(**base), s3_spec(**{**base, **changed})
    assert _key(other) != _key(spec)
    assert _key(other) == s3_key(source_location(other))


def test_the_region_and_param_spelling_do_not_change_an_s3_key() -> None:
    plain = _key(s3_spec(Endpoint="http://127.0.0.1:9000"))
    assert _key(s3_spec(Endpoint="http://127.0.0.1:9000", Region="eu-west-1")) == plain
    lowered = SpecConfig(Type="S3", Params={"bucket": "bucket", "key": "data/file.csv", "endpoint": "http://127.0.0.1:9000/"})
    assert _key(lowered) == plain


@pytest.mark.parametrize(
    "params",
    [
        {},  # no Bucket
        {"Bucket": "  ", "Key": "x"},
        {"Bucket": "b", "Key": "x", "Endpoint": "ftp://host"},
        {"Bucket": "b", "Key": "data/", "VersionID": "v1"},  # a version of a prefix
        {"Bucket": "b", "Key": "x", "Filter": "("},  # not a regex
        {"Bucket": "b", "Key": "x", "ChecksumSHA256": "not-a-digest"},
    ],
)
def test_a_malformed_s3_source_has_no_key(params: dict[str, str]) -> None:
    assert input_key(SpecConfig(Type="s3", Params=params)) is None


# ---- ipfs, local, inline -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["CID", "cid", "Cid"])
def test_an_ipfs_key_is_its_cid_whatever_the_param_spelling(name: str) -> None:
    assert input_key(SpecConfig(Type="ipfs", Params={name: f" {CID} "})) == ipfs_key(CID) == f"ipfs:{CID}"
    assert kind_of(ipfs_key(CID)) == KIND_IPFS
    assert input_key(SpecConfig(Type="ipfs", Params={name: ""})) is None


@pytest.mark.parametrize("type_", ["local", "localDirectory", "LocalDirectory", "LOCAL"])
def test_local_and_local_directory_sources_are_keyed_by_their_normalised_path(type_: str) -> None:
    assert input_key(SpecConfig(Type=type_, Params={"SourcePath": "/data/./sub/"})) == "local:/data/sub"
    assert input_key(SpecConfig(Type=type_, Params={"sourcepath": "/data/x/../sub"})) == "local:/data/sub"
    assert kind_of(local_key("/data/sub")) == KIND_LOCAL


@pytest.mark.parametrize("path", ["data/sub", "./data", "", None])
def test_a_relative_or_missing_local_path_has_no_key(path: object) -> None:
    assert input_key(SpecConfig(Type="local", Params={"SourcePath": path})) is None


@pytest.mark.parametrize(
    "spec",
    [
        SpecConfig(Type="inline", Params={"URL": "data:text/plain;base64,aGVsbG8="}),
        SpecConfig(Type="s3PreSigned", Params={"PreSignedURL": "https://example.com/x?sig=1"}),
        SpecConfig(Type="unknown", Params={"URL": "https://example.com/x"}),
    ],
)
def test_sources_naming_no_placeable_data_have_no_key(spec: SpecConfig) -> None:
    assert input_key(spec) is None


def test_the_ancestors_of_a_local_path_are_every_folder_above_it_innermost_first() -> None:
    assert ancestors(local_key("/a/b/c")) == ["local:/a/b/c", "local:/a/b", "local:/a", "local:/"]
    assert ancestors(local_key("/")) == ["local:/"]


@pytest.mark.parametrize("key", [url_key("https://example.com/a/b"), ipfs_key(CID), s3_key(source_location(s3_spec()))])
def test_a_key_other_than_a_local_path_is_its_only_ancestor(key: str) -> None:
    assert ancestors(key) == [key]


# ---- the compute side indexes its input cache by the same keys --------------------------------------


class _Handler(BaseHTTPRequestHandler):
    BODY = b"0123456789" * 10

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        etag = f'"{hashlib.sha256(self.BODY).hexdigest()[:16]}"'
        if self.headers.get("If-None-Match") == etag:
            self.send_response(304)
            self.send_header("ETag", etag)
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("ETag", etag)
        self.send_header("Content-Length", str(len(self.BODY)))
        self.end_headers()
        self.wfile.write(self.BODY)


@pytest.fixture
def base_url() -> Iterator[str]:
    with http_server(_Handler) as base:
        yield base


@pytest.fixture
def cache(tmp_path: Path) -> Iterator[InputCache]:
    made = InputCache(root=tmp_path / "input-cache", max_bytes=1 << 20)
    try:
        yield made
    finally:
        made.close()


async def test_a_staged_url_is_cached_under_the_key_the_orchestrator_computes(
    base_url: str, cache: InputCache, tmp_path: Path
) -> None:
    url = f"{base_url}/data/file.bin"
    source = InputSource(Source=url_spec(f"  {url} "), Target="/inputs/data")
    provider = UrlStorage(read_timeout_s=5.0, max_retries=0, max_bytes=1 << 20, cache=cache)
    assert not cache.contains(_key(source.source))

    await provider.prepare(source, tmp_path / "exec")

    assert cache.contains(_key(source.source))
    assert cache.contains(url_key(url))
    assert not cache.contains(url_key(f"{base_url}/data/other.bin"))
    assert await provider.has_locally(InputSource(Source=url_spec(url), Target="/in"))


async def test_the_s3_provider_finds_an_entry_cached_under_the_orchestrators_key(
    cache: InputCache, tmp_path: Path
) -> None:
    spec = s3_spec(Endpoint="http://127.0.0.1:9", VersionID="v1")
    async with cache.claim(_key(spec), label="s3://bucket/data/file.csv") as claim:
        folder = await claim.scratch(tmp_path / "fallback")
        (folder / "file.csv").write_bytes(b"a,b\n")
        (tmp_path / "dest").mkdir()
        assert await claim.store(folder, tmp_path / "dest", validator='"etag-1"')
    provider = S3Storage(max_bytes=1 << 20, cache=cache)
    try:
        assert await provider.has_locally(InputSource(Source=spec, Target="/in"))
        other_version = s3_spec(Endpoint="http://127.0.0.1:9", VersionID="v2")
        assert not await provider.has_locally(InputSource(Source=other_version, Target="/in"))
    finally:
        await provider.stop()
