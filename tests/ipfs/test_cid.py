"""is_valid_cid / require_valid_cid: CIDv0 and CIDv1 in every multibase Kubo prints, and near misses."""

from __future__ import annotations

import base64

import pytest

from bacalhau.ipfs.cid import is_valid_cid, multihash, require_valid_cid
from bacalhau.models.errors import ErrorCode, StorageError

VALID = [
    "QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o",  # v0: `ipfs add` of "hello world\n"
    "bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi",  # v1 dag-pb, base32
    "bafkreifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n5e",  # v1 raw, base32
    "BAFYBEIGDYRZT5SFP7UDM7HU76UH7Y26NF3EFUYLQABF3OCLGTQY55FBZDI",  # base32 upper
    "zdj7WWeQ43G6JJvLWQWZpyHuAMq6uYWRjkBXFad11vE2LHhQ7",  # v1 dag-pb, base58btc
    "f01701220c3c4733ec8affd06cf9e9ff50ffc6bcd2ec85a6170004bb709669c31de94391a",  # base16
    "k2k4r8jl0yz8qjgqbmc2cdu5hkqek5rj6flgnlkyywynci20j0iuyfuj",  # base36 (an IPNS-style key CID)
    "mAXASIMPEcz7Ir/0Gz56f9Q/8a80uyFphcABLtwlmnDHelDka",  # base64
    "uAXASIMPEcz7Ir_0Gz56f9Q_8a80uyFphcABLtwlmnDHelDka",  # base64url
]

INVALID = [
    "",
    "Qm",
    "QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5",  # v0, one character short
    "QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5O",  # v0, O is not base58
    "QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o ",  # trailing space
    "/ipfs/QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o",  # a path, not a CID
    "QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o/readme",
    "bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzd",  # digest one byte short
    "bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdia",  # trailing garbage
    "bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzd1",  # 1 is not base32
    "bAFYBEIGDYRZT5SFP7UDM7HU76UH7Y26NF3EFUYLQABF3OCLGTQY55FBZDI",  # lower prefix, upper body
    "f01701220c3c4733ec8affd06cf9e9ff50ffc6bcd2ec85a6170004bb709669c31de94391",  # base16, odd length
    "f 01701220c3c4733ec8affd06cf9e9ff50ffc6bcd2ec85a6170004bb709669c31de94391a",
    "b" + base64.b32encode(bytes([2, 0x70, 0x12, 0x20]) + bytes(32)).decode().lower().rstrip("="),  # version 2
    "b"
    + base64.b32encode(bytes([1, 0x70, 0x12, 0x80, 0x00]) + bytes(0)).decode().lower().rstrip("="),  # varint 0x80 0x00
    "xafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi",  # unknown multibase
    "not-a-cid",
    "b",
]


@pytest.mark.parametrize("cid", VALID)
def test_valid_cids_are_accepted(cid: str) -> None:
    assert is_valid_cid(cid)
    assert require_valid_cid(cid) == cid


@pytest.mark.parametrize("cid", INVALID)
def test_invalid_cids_are_rejected_naming_them(cid: str) -> None:
    assert not is_valid_cid(cid)
    with pytest.raises(StorageError) as caught:
        require_valid_cid(cid)
    assert repr(cid) in caught.value.message
    assert caught.value.code == ErrorCode.BadRequest


def test_non_strings_are_not_cids() -> None:
    assert not is_valid_cid(None)  # type: ignore[arg-type]
    assert not is_valid_cid(b"QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o")  # type: ignore[arg-type]


def test_multihash_is_the_same_for_a_cidv0_and_the_cidv1s_of_the_same_bytes() -> None:
    v0 = "QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o"
    digest = multihash(v0)
    assert digest is not None and digest[:2] == bytes([0x12, 0x20]) and len(digest) == 34
    v1 = "b" + base64.b32encode(bytes([1, 0x70]) + digest).decode().lower().rstrip("=")  # dag-pb, base32
    raw_v1 = "B" + base64.b32encode(bytes([1, 0x55]) + digest).decode().rstrip("=")  # raw, base32 upper
    assert multihash(v1) == digest
    assert multihash(raw_v1) == digest


@pytest.mark.parametrize("value", INVALID)
def test_multihash_of_an_invalid_cid_is_none(value: str) -> None:
    assert multihash(value) is None
