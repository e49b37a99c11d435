"""A second process with an embedded IPFS node, for tests/ipfs/test_embedded_swarm.py.

    python embedded_child.py <repo_dir> <path to add>

Starts an EmbeddedIpfsNode, adds the path and prints one JSON line {"cid": ..., "addresses": [...]},
then serves until its stdin closes (a clean stop) or a signal ends it.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

from bacalhau.ipfs.embedded import EmbeddedIpfsNode


async def main(repo: Path, path: Path) -> None:
    async with EmbeddedIpfsNode(repo) as node:
        cid = await node.add(path)
        print(json.dumps({"cid": cid, "addresses": await node.addresses()}), flush=True)
        await asyncio.to_thread(sys.stdin.read)


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1]), Path(sys.argv[2])))
