"""Finding where a published result can be downloaded from."""

from __future__ import annotations

from bacalhau.client.results import redact_query, result_name, result_url
from bacalhau.models.job import SpecConfig


def test_local_and_url_results_give_their_url() -> None:
    spec = SpecConfig(Type="urlDownload", Params={"URL": "http://127.0.0.1:6001/e-1.tar.gz"})
    assert result_url(spec) == "http://127.0.0.1:6001/e-1.tar.gz"


def test_presigned_s3_results_give_their_presigned_url() -> None:
    spec = SpecConfig(Type="s3PreSigned", Params={"PreSignedURL": "https://s3/x?sig=1", "Bucket": "b"})
    assert result_url(spec) == "https://s3/x?sig=1"


def test_ipfs_and_s3_results_have_no_url() -> None:
    assert result_url(SpecConfig(Type="ipfs", Params={"CID": "Qm"})) == ""
    assert result_url(SpecConfig(Type="s3", Params={"Bucket": "b", "Key": "k"})) == ""


def test_presigned_urls_are_shown_without_their_signature() -> None:
    assert redact_query("https://s3.local/b/k.tar.gz?X-Amz-Signature=abc") == "https://s3.local/b/k.tar.gz"


def test_result_names_come_from_the_archive_file_name() -> None:
    assert result_name("http://h/results/e-1.tar.gz", 0) == "e-1"
    assert result_name("http://h/", 3) == "result-3"
