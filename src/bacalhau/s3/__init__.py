"""S3 access shared by the compute node (inputs, publisher), the orchestrator and the client.

    location.py  S3Location: Bucket/Key/Filter/... params read from a SpecConfig (validation included)
    client.py    open_client(endpoint, region): an aiobotocore client with the node's credentials
    pool.py      ClientPool: long-lived clients per (endpoint, region), leased per transfer
    errors.py    translated(...): botocore/aiohttp exceptions -> StorageError / PublishError
    transfer.py  downloads: one object to a file, a prefix to a folder tree (chunked, checksummed)
    upload.py    uploads: one file (multipart when large), a folder tree
    presign.py   presign_get(...): a time-limited GET URL, signed locally

Imports only bacalhau.models and third-party packages.
"""
