"""A stand-in "Kubo daemon" in a process of its own, for the end-to-end tests of the Kubo RPC path.

    python rpc_child.py <repo_dir> <path to add>

Starts KuboRpcStandIn (tests/ipfs_rpc_server.py: Kubo's RPC routes backed by the real Kubo core; no
Kubo daemon is reachable here), adds the path and prints one JSON line {"url": ..., "cid": ...}, then
serves until its stdin closes.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests/, for ipfs_rpc_server

from ipfs_rpc_server import KuboRpcStandIn


async def main(repo: Path, path: Path) -> None:
    async with KuboRpcStandIn(repo) as daemon:
        cid = await daemon.node.add(path)
        print(json.dumps({"url": daemon.url, "cid": cid}), flush=True)
        await asyncio.to_thread(sys.stdin.read)


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1]), Path(sys.argv[2])))
