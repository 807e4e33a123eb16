"""Billing runs: turn what subscriptions owe into finalized invoices, exactly once.

See ``docs/billing-runs.md``. A run advances the subscriptions that are due up to an instant
(phase A, :mod:`saas.subscriptions.services`), then drafts and finalizes one invoice per
subscription period from the pending charges (phase B, :mod:`billing.runs.engine`), in
batches that are one transaction each. The unique key ``(tenant_id, subscription_id,
period_start_on)`` on ``invoices`` and row locks on the charges make every period invoiced
once, also when a run is killed and started again or two runs overlap.
"""
