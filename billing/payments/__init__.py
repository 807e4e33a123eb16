"""Payments: the provider gateways (manual bank transfer, Stripe) and, on top of them, the
recording of payments against invoices."""
