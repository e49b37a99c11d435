"""Messages between orchestrator and compute nodes, and the interfaces that carry them."""
