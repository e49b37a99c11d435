"""Result publishers (local, noop; s3/ipfs later) behind the Publisher protocol."""
