"""Billing: invoices, billing runs, payments, MRR metrics (built on the subscription issue)."""
