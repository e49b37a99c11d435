"""The `bacalhau` command line: one module per verb, shared flags in flags.py, rendering in output.py."""
