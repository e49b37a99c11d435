"""The orchestrator (Bacalhau's "requester"): decides what runs where; never runs anything."""
