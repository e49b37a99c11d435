"""Node selection: feasibility filters and rankers, each recording why a node was ruled out."""
