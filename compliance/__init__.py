"""Compliance: GDPR exports and erasure with retention holds, and the audit log."""
