"""MRR metrics: the movement ledger, monthly reports, cohorts, reconciliation and charts.

The rules (docs/metrics.md) live in pure modules (`movements`, `months`, `cohorts`,
`reconcile`, `fx`, `eventfile`); `models`, `sql` and `services` put them on the database;
the HTTP and CLI shells are in `saas.metrics`. Subscriptions never import this package: the
ledger is derived from the append-only `subscription_history`.
"""
