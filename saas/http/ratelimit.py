"""Rate-limit identity: the credential, hashed, without touching the database.

Keyed by the bearer token itself (before authentication runs) so that a flood of requests is
turned away without a database round trip; unauthenticated calls are limited per client IP.
"""

from __future__ import annotations

import hashlib

from flask import request


def rate_limit_key() -> str:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and token:
        return "cred:" + hashlib.sha256(token.strip().encode()).hexdigest()[:32]
    return "ip:" + (request.remote_addr or "unknown")
