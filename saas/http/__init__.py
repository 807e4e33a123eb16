"""HTTP conventions shared by every endpoint: problems, idempotency, pagination, request ids."""
