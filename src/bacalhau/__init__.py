"""bacalhau-py: Bacalhau, the compute-over-data platform, in Python."""

__version__ = "0.1.0"
