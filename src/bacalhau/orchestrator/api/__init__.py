"""HTTP <-> endpoint translation only: FastAPI routers for /api/v1 with Bacalhau's shapes."""
