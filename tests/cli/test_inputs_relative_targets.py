"""`-i URI:TARGET` and `wasm run FILE:TARGET` with relative targets, which Bacalhau's CLI accepts as written
(cmd/util/opts/storage_specconfig.go splits at the last colon after `scheme://`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bacalhau.cli.inputs import inline_file, parse_input


@pytest.mark.parametrize(
    ("raw", "uri", "target"),
    [
        ("ipfs://QmHash:data", "ipfs://QmHash", "data"),
        ("https://example.com/f.csv:inputs/f.csv", "https://example.com/f.csv", "inputs/f.csv"),
        ("s3://bucket/key:raw", "s3://bucket/key", "raw"),
        ("ipfs://QmHash:/data", "ipfs://QmHash", "/data"),
    ],
)
def test_a_relative_target_after_the_last_colon_is_kept_as_written(raw: str, uri: str, target: str) -> None:
    src = parse_input(raw)
    assert (src["Alias"], src["Target"]) == (uri, target)


@pytest.mark.parametrize(
    "raw", ["https://example.com:8443/file.txt", "http://example.com:8080", "https://user:secret@example.com/f"]
)
def test_a_port_or_user_info_colon_is_not_a_target(raw: str) -> None:
    src = parse_input(raw)
    assert (src["Source"]["Params"]["URL"], src["Target"]) == (raw, "/inputs")


def test_a_local_module_keeps_a_relative_target(tmp_path: Path) -> None:
    module = tmp_path / "hello.wasm"
    module.write_bytes(b"\0asm")
    assert inline_file(f"{module}:main.wasm", flag="MODULE")["Target"] == "main.wasm"


def test_dst_may_be_relative() -> None:
    assert parse_input("src=ipfs://QmHash,dst=data")["Target"] == "data"
