"""Tenants: the sellers who run their billing on abowerk. A global table (no tenant_id)."""
