"""Input sources (inline, local; url/s3/ipfs later) behind the StorageProvider protocol."""
