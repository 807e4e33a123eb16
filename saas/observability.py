"""Prometheus metrics of abowerk: every metric is defined here, once, with its meaning.

This module imports nothing but `prometheus_client`, so code of any layer may import it and
count what it does (the domain counts its own events: webhook attempts, invoices issued),
the way it would use the kernel. Exposition lives elsewhere: the web process serves
`/metrics` (`saas.http.metrics`), the worker serves its own when started with
`--metrics-bind` (`serve_worker_metrics`). Reference: docs/operations.md, "Monitoring".

Multi-process: gunicorn runs several worker processes, each with its own counters. With
`PROMETHEUS_MULTIPROC_DIR` set (to an empty directory the process may write), every process
writes its values to memory-mapped files there and `/metrics` adds them up, so a scrape sees
the whole server and not whichever worker process answered. `deploy/gunicorn.conf.py` empties
the directory when gunicorn starts and marks dead workers (`child_exit`). Without the variable
each process counts on its own, which is right for one process (tests, the worker, the CLI).

Label values are bounded sets (URL rules, not raw paths; status codes; outcomes): never ids,
tenants or anything a client can make up, or each new value would be a new time series.
"""

from __future__ import annotations

import os
from typing import Final

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    start_http_server,
)
from prometheus_client.multiprocess import MultiProcessCollector

MULTIPROC_ENV: Final = "PROMETHEUS_MULTIPROC_DIR"

HTTP_REQUEST_DURATION = Histogram(
    "abowerk_http_request_duration_seconds",
    "Time from the first to the last hook of a request, by URL rule (not raw path) and status.",
    ["method", "endpoint", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
HTTP_REQUESTS_IN_FLIGHT = Gauge(
    "abowerk_http_requests_in_flight",
    "Requests being served right now, over all worker processes.",
    # livesum: the sum over the processes still alive (gunicorn marks dead ones, child_exit)
    multiprocess_mode="livesum",
)
WEBHOOK_ATTEMPTS = Counter(
    "abowerk_webhook_attempts",
    "Webhook delivery attempts by the delivery's state after the attempt: succeeded, "
    "retrying (failed, another attempt is scheduled) or failed (failed, retries exhausted).",
    ["outcome"],
)
BILLING_INVOICES = Counter(
    "abowerk_billing_invoices",
    "Invoices issued by billing runs (billing-run throughput): incremented by the billing code "
    "once per finalized invoice, after its transaction committed.",
    ["livemode"],
)

WEBHOOK_OUTCOMES: Final = ("succeeded", "retrying", "failed")
for _outcome in WEBHOOK_OUTCOMES:
    WEBHOOK_ATTEMPTS.labels(outcome=_outcome)  # export 0 before the first attempt, not nothing
for _mode in ("false", "true"):
    BILLING_INVOICES.labels(livemode=_mode)


def count_webhook_attempt(delivery_status: str) -> None:
    """Count one attempt; `delivery_status` is the delivery's status right after it."""
    outcome = {"succeeded": "succeeded", "pending": "retrying", "failed": "failed"}.get(
        delivery_status
    )
    if outcome is not None:
        WEBHOOK_ATTEMPTS.labels(outcome=outcome).inc()


def count_invoices_issued(count: int = 1, *, livemode: bool) -> None:
    """For the billing run: call after the transaction that finalized the invoices committed."""
    BILLING_INVOICES.labels(livemode="true" if livemode else "false").inc(count)


def multiprocess_dir() -> str | None:
    return os.environ.get(MULTIPROC_ENV) or None


def process_registry() -> CollectorRegistry:
    """The registry holding this server's metrics: in multi-process mode one whose collector
    reads every process's files at each scrape, otherwise the default one."""
    from prometheus_client import REGISTRY

    if multiprocess_dir() is None:
        return REGISTRY
    registry = CollectorRegistry()
    MultiProcessCollector(registry)  # type: ignore[no-untyped-call]  # typed in later releases
    return registry


def serve_worker_metrics(bind: str) -> None:
    """Serve this process's metrics on `host:port` from a background thread (the worker)."""
    host, _, port = bind.rpartition(":")
    start_http_server(int(port), addr=host or "0.0.0.0", registry=process_registry())  # noqa: S104
