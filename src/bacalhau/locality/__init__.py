"""Which data a job's inputs name, as keys both sides compute the same way (compute: what it holds;
orchestrator: who holds what a job needs). Imports only models and the s3 location parser."""
