"""Observability: `/metrics` (Prometheus) and W3C trace context in responses and logs."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from saas import observability, worker
from saas.app import create_app
from saas.extensions import db
from saas.http.request_context import JsonFormatter, parse_traceparent
from tests.conftest import CUSTOMER, TenantCtx, make_environ
from tests.support.receiver import start_receiver

TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")


@pytest.fixture
def build_app(database_url: str, tmp_path: Path, restore_huey: None) -> Iterator[Any]:
    """An app with extra settings over the suite's migrated database."""
    built: list[Flask] = []

    def build(**extra: str) -> Flask:
        made = create_app({"ENVIRON": make_environ(database_url, tmp_path, **extra)})
        built.append(made)
        return made

    yield build
    for made in built:
        with made.app_context():
            db.engine.dispose()


def _samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def _value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_metrics_are_served_without_api_key_when_scraped(client: FlaskClient) -> None:
    resp = client.get("/metrics")
    assert resp.status_code == 200
    assert resp.mimetype == "text/plain"
    names = {family.name for family in text_string_to_metric_families(resp.text)}
    assert {
        "abowerk_http_request_duration_seconds",
        "abowerk_http_requests_in_flight",
        "abowerk_worker_queue_depth",
        "abowerk_webhook_attempts",
        "abowerk_billing_invoices",
    } <= names


def test_request_latency_is_labelled_by_url_rule_when_path_has_an_id(
    client: FlaskClient, tenant: TenantCtx
) -> None:
    created = client.post("/v1/customers", json=CUSTOMER, headers=tenant.headers)
    customer_id = created.json["id"]
    assert client.get(f"/v1/customers/{customer_id}", headers=tenant.headers).status_code == 200
    assert client.get("/v1/no-such-thing", headers=tenant.headers).status_code == 404
    samples = _samples(client.get("/metrics").text)
    count = "abowerk_http_request_duration_seconds_count"
    item = frozenset(
        {"method": "GET", "endpoint": "/v1/customers/<customer_id>", "status": "200"}.items()
    )
    assert samples[(count, item)] >= 1
    unmatched = frozenset({"method": "GET", "endpoint": "<unmatched>", "status": "404"}.items())
    assert samples[(count, unmatched)] >= 1
    # raw paths (with ids) never become label values: one series per rule
    assert not any(customer_id in str(labels) for _, labels in samples)


def test_requests_in_flight_return_to_zero_when_requests_fail(
    client: FlaskClient, tenant: TenantCtx
) -> None:
    before = _value("abowerk_http_requests_in_flight")
    client.get("/v1/customers", headers={"Authorization": "Bearer sk_test_wrong"})  # 401
    client.get("/v1/customers", headers=tenant.headers)
    client.post("/v1/customers", data="{", headers=tenant.headers)  # 400/422
    assert _value("abowerk_http_requests_in_flight") == before
    # while /metrics itself is being served, it is the one request in flight
    samples = _samples(client.get("/metrics").text)
    assert samples[("abowerk_http_requests_in_flight", frozenset())] == before + 1


def test_metrics_are_exempt_from_rate_limits_when_scraped_often(build_app: Any) -> None:
    limited = build_app(ABOWERK_RATE_LIMIT="2 per minute").test_client()
    assert [limited.get("/metrics").status_code for _ in range(5)] == [200] * 5
    assert limited.get("/v1/customers").status_code == 401  # the limit does apply elsewhere


def test_metrics_require_the_token_when_one_is_configured(build_app: Any) -> None:
    client = build_app(ABOWERK_METRICS_TOKEN="scrape-secret-123").test_client()
    assert client.get("/metrics").status_code == 401
    wrong = client.get("/metrics", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    assert wrong.mimetype == "application/problem+json"
    ok = client.get("/metrics", headers={"Authorization": "Bearer scrape-secret-123"})
    assert ok.status_code == 200


def test_queue_depth_counts_waiting_tasks_when_no_worker_runs(
    build_app: Any, tmp_path: Path
) -> None:
    # a queued (not immediate) app: tasks wait in the embedded queue file
    app = build_app(ABOWERK_TASKS_IMMEDIATE="", ABOWERK_VAR_DIR=str(tmp_path / "queued"))
    client = app.test_client()
    before = _samples(client.get("/metrics").text)[("abowerk_worker_queue_depth", frozenset())]
    worker.deliver_webhooks("ten_queued_1")
    worker.deliver_webhooks("ten_queued_2")
    samples = _samples(client.get("/metrics").text)
    assert samples[("abowerk_worker_queue_depth", frozenset())] == before + 2
    assert samples[("abowerk_worker_queue_up", frozenset())] == 1
    worker.huey.flush()


def test_queue_metrics_report_down_when_redis_is_unreachable(build_app: Any) -> None:
    # nothing listens on port 1: the scrape still answers, with the queue marked down
    app = build_app(ABOWERK_TASKS_IMMEDIATE="", ABOWERK_REDIS_URL="redis://127.0.0.1:1/0")
    resp = app.test_client().get("/metrics")
    assert resp.status_code == 200
    samples = _samples(resp.text)
    assert samples[("abowerk_worker_queue_up", frozenset())] == 0
    assert ("abowerk_worker_queue_depth", frozenset()) not in samples


def test_webhook_attempts_are_counted_by_outcome_when_delivered(
    client: FlaskClient, tenant: TenantCtx
) -> None:
    receiver, server = start_receiver()
    try:
        resp = client.post(
            "/v1/webhook_endpoints",
            json={"url": receiver.url, "enabled_events": ["customer.created"]},
            headers=tenant.headers,
        )
        assert resp.status_code == 201
        ok_before = _value("abowerk_webhook_attempts_total", outcome="succeeded")
        retry_before = _value("abowerk_webhook_attempts_total", outcome="retrying")
        # tasks run inline in the suite: the delivery happens after the request's commit
        assert (
            client.post("/v1/customers", json=CUSTOMER, headers=tenant.headers).status_code == 201
        )
        receiver.fail_next(1)
        assert (
            client.post("/v1/customers", json=CUSTOMER, headers=tenant.headers).status_code == 201
        )
    finally:
        server.shutdown()
        server.server_close()
    assert len(receiver.requests) == 2
    assert _value("abowerk_webhook_attempts_total", outcome="succeeded") == ok_before + 1
    assert _value("abowerk_webhook_attempts_total", outcome="retrying") == retry_before + 1


def test_invoice_counter_is_exported_when_billing_counts(client: FlaskClient) -> None:
    before = _value("abowerk_billing_invoices_total", livemode="true")
    observability.count_invoices_issued(3, livemode=True)
    samples = _samples(client.get("/metrics").text)
    key = ("abowerk_billing_invoices_total", frozenset({"livemode": "true"}.items()))
    assert samples[key] == before + 3


# --- trace context -------------------------------------------------------------------------

PARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def test_response_continues_the_callers_trace_when_traceparent_is_sent(
    client: FlaskClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="abowerk.access"):
        resp = client.get("/healthz", headers={"traceparent": PARENT})
    match = TRACEPARENT.match(resp.headers["traceparent"])
    assert match is not None
    trace_id, span_id, flags = match.groups()
    assert trace_id == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert span_id != "00f067aa0ba902b7"  # this request's own span, a child of the caller's
    assert flags == "01"
    line = json.loads(JsonFormatter().format(caplog.records[-1]))
    assert (line["trace_id"], line["span_id"], line["trace_flags"]) == (trace_id, span_id, "01")
    assert line["request_id"] == resp.headers["X-Request-Id"]


def test_response_starts_a_new_trace_when_no_traceparent_is_sent(
    client: FlaskClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="abowerk.access"):
        first = client.get("/healthz")
        second = client.get("/healthz")
    one = TRACEPARENT.match(first.headers["traceparent"])
    two = TRACEPARENT.match(second.headers["traceparent"])
    assert one is not None and two is not None
    assert one.group(1) != two.group(1)  # every request a trace of its own
    assert one.group(3) == "00"  # not sampled: nothing here records spans
    line = json.loads(JsonFormatter().format(caplog.records[-1]))
    assert line["trace_id"] == two.group(1)


@pytest.mark.parametrize(
    "header",
    [
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",  # all-zero trace id
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",  # all-zero parent id
        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",  # forbidden version
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",  # uppercase hex
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",  # v00 has 4 fields
        "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",  # short trace id
        "garbage",
    ],
)
def test_invalid_traceparent_is_ignored_when_received(client: FlaskClient, header: str) -> None:
    assert parse_traceparent(header) is None
    resp = client.get("/healthz", headers={"traceparent": header})
    match = TRACEPARENT.match(resp.headers["traceparent"])
    assert match is not None
    assert match.group(1) != "4bf92f3577b34da6a3ce929d0e0e4736"


def test_future_traceparent_version_is_read_as_version_00_when_received() -> None:
    parsed = parse_traceparent("cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-03-more")
    assert parsed is not None
    assert parsed.trace_id == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert parsed.parent_span_id == "00f067aa0ba902b7"
    assert parsed.trace_flags == "01"  # unknown flag bits are not passed on
    assert parsed.traceparent.startswith("00-4bf92f3577b34da6a3ce929d0e0e4736-")
