"""Subscriptions: a customer on a price, through trials, periods, changes, pauses, cancellation.

Subscriptions never import billing: what a change owes is recorded as `subscription_charges`
rows (recurring charges and proration lines) and every change as an append-only
`subscription_history` row; billing turns charges into invoices and history into MRR metrics.
Pure rules live in `lifecycle` (states), `periods` (calendar), `proration` and `mrr` (money).
"""
