"""`GET /metrics`: Prometheus metrics of this web server (definitions: saas/observability.py).

- Served without an API key and exempt from rate limits, so a scraper is never turned away;
  it is operational data for the operator, not for tenants, and must not be reachable from the
  internet: keep it off the public load balancer, or set `ABOWERK_METRICS_TOKEN` and have the
  scraper send `Authorization: Bearer <token>` (anything else is `401`).
- Besides the request metrics that every worker process counts (summed over the processes in
  multi-process mode), a scrape reads the task queue's depth from the configured Huey storage
  (Redis, or the embedded SQLite file): one cheap call each, no database query.
- Webhook outcomes and invoices are counted by the worker, which serves them itself
  (`abowerk worker --metrics-bind`): on PostgreSQL the app role sees one tenant at a time
  through row-level security, so a cross-tenant count at scrape time would be one query per
  tenant; counting where the work happens costs nothing.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Iterable, Iterator

from flask import Blueprint, Flask, Response, current_app, request
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from saas import observability
from saas.http.problems import problem
from saas.http.ratelimit import RateLimiter

log = logging.getLogger("abowerk.metrics")

# named for what it serves, apart from the MRR metrics API (/v1/metrics)
blp = Blueprint("prometheus", __name__)


class QueueCollector(Collector):
    """Depth of the Huey queue, read from its storage at each scrape."""

    def collect(self) -> Iterable[Metric]:
        from saas.worker import huey

        up = GaugeMetricFamily(
            "abowerk_worker_queue_up", "1 if the task queue's storage answered this scrape."
        )
        try:
            pending = huey.pending_count()
            scheduled = huey.scheduled_count()
        except Exception:  # any storage error: report it as a metric, not as a 500
            log.warning("could not read the task queue's depth", exc_info=True)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield GaugeMetricFamily(
            "abowerk_worker_queue_depth",
            "Tasks waiting in the queue for a worker (not counting those scheduled for later).",
            value=pending,
        )
        yield GaugeMetricFamily(
            "abowerk_worker_queue_scheduled",
            "Tasks scheduled to run at a later time (delayed tasks), held by the scheduler.",
            value=scheduled,
        )


class _Delegate(Collector):
    """Collects another registry, so a per-scrape registry can add collectors to it."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self._registry = registry

    def collect(self) -> Iterator[Metric]:
        yield from self._registry.collect()


def _authorized() -> bool:
    token = current_app.config["ABOWERK_SETTINGS"].metrics_token
    if token is None:
        return True
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip(), token)


@blp.get("/metrics")
def metrics() -> Response:
    if not _authorized():
        return problem(
            401,
            "authentication_required",
            "Unauthorized",
            "send `Authorization: Bearer <ABOWERK_METRICS_TOKEN>`",
            headers={"WWW-Authenticate": 'Bearer realm="abowerk-metrics"'},
        )
    registry = CollectorRegistry()
    registry.register(_Delegate(observability.process_registry()))
    registry.register(QueueCollector())
    # the text format, or OpenMetrics when the scraper asks for it (Prometheus does)
    encode, content_type = choose_encoder(request.headers.get("Accept", ""))
    resp = Response(encode(registry), status=200)
    resp.headers["Content-Type"] = content_type
    resp.headers["Cache-Control"] = "no-store"
    return resp


def init_app(app: Flask, limiter: RateLimiter) -> None:
    """Register `/metrics`, exempt from rate limits."""
    app.register_blueprint(blp)
    limiter.exempt(blp)
