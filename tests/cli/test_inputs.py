"""`-i` storage URIs and local files as InputSources."""

from __future__ import annotations

import base64
from pathlib import Path

import click
import pytest

from bacalhau.cli.inputs import inline_file, parse_input


def test_ipfs_uri_with_target() -> None:
    src = parse_input("ipfs://QmHash:/data")
    assert src["Source"]["Type"] == "ipfs" and src["Source"]["Params"] == {"CID": "QmHash"}
    assert src["Target"] == "/data" and src["Alias"] == "ipfs://QmHash"


def test_default_target_is_inputs() -> None:
    assert parse_input("ipfs://QmHash")["Target"] == "/inputs"


def test_http_uri_is_url_download_and_keeps_its_port() -> None:
    src = parse_input("https://example.com:8443/file.txt")
    assert src["Source"]["Type"] == "urlDownload"
    assert src["Source"]["Params"] == {"URL": "https://example.com:8443/file.txt"}
    assert src["Target"] == "/inputs"


def test_http_uri_with_target() -> None:
    src = parse_input("http://example.com/f.txt:/in/f.txt")
    assert src["Source"]["Params"]["URL"] == "http://example.com/f.txt" and src["Target"] == "/in/f.txt"


def test_s3_uri_with_options() -> None:
    src = parse_input("src=s3://bucket/some/key,dst=/s3,opt=region=eu-west-1,opt=endpoint=http://minio:9000")
    assert src["Source"]["Type"] == "s3"
    assert src["Source"]["Params"] == {
        "Bucket": "bucket",
        "Key": "some/key",
        "Region": "eu-west-1",
        "Endpoint": "http://minio:9000",
    }
    assert src["Target"] == "/s3"


def test_file_uri_is_a_local_source_read_only_by_default() -> None:
    src = parse_input("file:///host/data:/data")
    assert src["Source"]["Type"] == "local" and src["Source"]["Params"] == {"SourcePath": "/host/data"}
    assert src["Target"] == "/data"


def test_file_uri_read_write_option() -> None:
    src = parse_input("src=file:///host/out,dst=/out,opt=rw=true")
    assert src["Source"]["Params"] == {"SourcePath": "/host/out", "ReadWrite": True}


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        ("ftp://x/y", "unsupported scheme"),
        ("git://github.com/x", "not supported"),
        ("ipfs://", "needs a CID"),
        ("src=s3://b/k,opt=color=red", "unknown s3 option"),
        ("dst=/x", "src= is required"),
    ],
)
def test_bad_inputs_say_why(raw: str, why: str) -> None:
    with pytest.raises(click.BadParameter, match=why):
        parse_input(raw)


def test_local_file_is_sent_inline_at_its_name(tmp_path: Path) -> None:
    module = tmp_path / "hello.wasm"
    module.write_bytes(b"\0asm")
    src = inline_file(str(module), flag="MODULE")
    assert src["Source"]["Type"] == "inline" and src["Target"] == "/hello.wasm"
    url = src["Source"]["Params"]["URL"]
    assert base64.b64decode(url.split(",", 1)[1]) == b"\0asm"


def test_local_file_with_explicit_target(tmp_path: Path) -> None:
    module = tmp_path / "lib.wasm"
    module.write_bytes(b"\0asm")
    assert inline_file(f"{module}:/app/lib.wasm", flag="-I")["Target"] == "/app/lib.wasm"


def test_missing_local_file_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(click.BadParameter, match="is not a file"):
        inline_file(str(tmp_path / "nope.wasm"), flag="MODULE")


def test_http_uri_takes_a_checksum_option() -> None:
    src = parse_input("src=https://example.com/f.csv,dst=/data,opt=checksum=sha256:" + "a" * 64)
    assert src["Source"]["Params"] == {"URL": "https://example.com/f.csv", "Checksum": "sha256:" + "a" * 64}
    assert src["Target"] == "/data"


def test_http_uri_refuses_unknown_options() -> None:
    with pytest.raises(click.BadParameter, match="unknown urlDownload option 'region'"):
        parse_input("src=https://example.com/f.csv,opt=region=x")
