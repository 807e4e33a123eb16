"""The shell of the MRR metrics (`billing.metrics`): the `/v1/metrics` API, the
`abowerk metrics` commands and the worker job that keeps the ledger up to date."""
