"""What an authenticated request costs, and that the cheaper path keeps every wall standing.

On PostgreSQL a read by id is two statements and the commit: the credential lookup (the
`SECURITY DEFINER` function of migration 0012, which also sets the transaction's tenant) and
the query itself; an `Idempotency-Key` claim rides in the authentication's transaction; a
prorated subscription change is eight statements in its own transaction. A pooled connection
is pinged only when its backend has ended or it sat idle (saas.extensions); with Redis both
rate limits cost one call (saas.http.ratelimit). The tests below pin those counts (a
regression would bring the round trips back, docs/benchmarks.md)
and show that the function opens no door: the app role still sees no other tenant's
credentials, an unknown secret sets no tenant, and a known one sets it for its own
transaction only. The session writes the tenant setting only when it changes, and writes it
again after a rolled-back savepoint (which undoes a change made inside it). With Redis, the
rate-limit headers come from the counters' increments (saas.http.ratelimit) and still count
down.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from saas.app import create_app
from saas.auth.services import hash_secret
from saas.extensions import db
from saas.kernel import tenancy
from tests.api.test_catalog import create_price
from tests.api.test_subscriptions import create_subscription
from tests.conftest import CUSTOMER, IN_CI, POSTGRES_ONLY, TenantCtx, make_environ

REDIS_URL = os.environ.get("ABOWERK_TEST_REDIS_URL", "")


@contextmanager
def statements(app: Flask) -> Iterator[list[str]]:
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(" ".join(statement.split())[:60])

    def commit(_conn: Any) -> None:
        seen.append("COMMIT")

    with app.app_context():
        engine = db.engine
    sa.event.listen(engine, "before_cursor_execute", record)
    sa.event.listen(engine, "commit", commit)
    try:
        yield seen
    finally:
        sa.event.remove(engine, "before_cursor_execute", record)
        sa.event.remove(engine, "commit", commit)


@POSTGRES_ONLY
def test_read_by_id_is_two_statements_and_a_commit_when_authenticated_on_postgres(
    app: Flask, client: FlaskClient, tenant: TenantCtx
) -> None:
    customer = client.post("/v1/customers", json=CUSTOMER, headers=tenant.headers).json["id"]
    with statements(app) as seen:
        resp = client.get(f"/v1/customers/{customer}", headers=tenant.headers)
    assert resp.status_code == 200
    assert len(seen) == 3, seen
    assert seen[0].startswith("SELECT * FROM abowerk_find_api_key(")
    assert seen[1].startswith("SELECT customers.")
    assert seen[2] == "COMMIT"


@POSTGRES_ONLY
def test_pooled_connection_is_pinged_only_when_its_backend_ended_or_it_sat_idle_on_postgres(
    app: Flask,
    client: FlaskClient,
    tenant: TenantCtx,
    owner_engine: sa.Engine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from saas import extensions

    customer = client.post("/v1/customers", json=CUSTOMER, headers=tenant.headers).json["id"]
    with app.app_context():
        engine = db.engine
    pings: list[object] = []
    real_ping = engine.dialect.do_ping

    def ping(dbapi_conn: Any) -> bool:
        pings.append(dbapi_conn)
        return real_ping(dbapi_conn)

    monkeypatch.setattr(engine.dialect, "do_ping", ping)
    # a connection just used goes out again without a round trip
    assert client.get(f"/v1/customers/{customer}", headers=tenant.headers).status_code == 200
    assert pings == []

    # the backends of the app's idle pooled connections are ended (the owner's engine keeps
    # no pool): the next request notices at checkout, replaces its connection and succeeds
    with owner_engine.connect() as conn:
        ended = conn.execute(
            sa.text(
                "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid, 5000)) "
                "FROM pg_stat_activity WHERE datname = current_database() "
                "AND pid <> pg_backend_pid()"
            )
        ).scalar()
    assert ended
    resp = client.get(f"/v1/customers/{customer}", headers=tenant.headers)
    assert resp.status_code == 200, resp.json
    assert resp.json["id"] == customer
    assert len(pings) >= 1

    # a connection idle for longer than the threshold is pinged even when nothing was heard
    engine.dispose()  # one fresh, healthy connection from here on
    assert client.get(f"/v1/customers/{customer}", headers=tenant.headers).status_code == 200
    pings.clear()
    monkeypatch.setattr(extensions, "PING_IF_IDLE_FOR", 0.0)
    assert client.get(f"/v1/customers/{customer}", headers=tenant.headers).status_code == 200
    assert len(pings) == 1


@POSTGRES_ONLY
def test_idempotency_claim_joins_the_authentication_transaction_when_a_key_is_sent(
    app: Flask, client: FlaskClient, tenant: TenantCtx
) -> None:
    sub = create_subscription(client, tenant, create_price(client, tenant, per_seat=True)["id"])
    headers = {**tenant.headers, "Idempotency-Key": "cost-1"}
    body = {"quantity": 2, "proration": "immediate"}
    with statements(app) as seen:
        resp = client.post(f"/v1/subscriptions/{sub['id']}/change", json=body, headers=headers)
    assert resp.status_code == 200, resp.json
    # the claim, committed with the authentication, before any of the view's statements
    assert seen[0].startswith("SELECT * FROM abowerk_find_api_key(")
    assert seen[1].startswith("INSERT INTO idempotency_keys")
    assert seen[2] == "COMMIT"
    # the view's own transaction sets its tenant once, then works (what follows its commit
    # is the tests' inline background work)
    view = seen[3 : seen.index("COMMIT", 3)]
    assert view[0].startswith("SELECT set_config(")
    assert not any(s.startswith("SELECT set_config(") for s in view[1:]), view
    # the prorated change itself: one read (the subscription with its price, plan, tenant's
    # zone and open period), the claim, the charges (one executemany), history and event
    # rows, the subscription's UPDATE and the idempotent response; 17 statements before
    # prices and plans were read once per change and the two late UPDATEs of the subscription
    # became one, 12 before a price's plan came with it, 11 before the zone, price and open
    # period came with the subscription
    assert len(view) == 8, view
    reads = [s for s in view[1:] if s.startswith("SELECT ")]
    assert len(reads) == 1 and reads[0].startswith("SELECT subscriptions."), view
    assert sum(s.startswith("UPDATE subscriptions ") for s in view) == 2, view
    assert sum(s.startswith("INSERT INTO subscription_charges ") for s in view) == 1, view
    # the tenant's zone is one column in that read, not a Tenant object hydrated for it
    assert not any(s.startswith("SELECT tenants.") for s in view), view


@POSTGRES_ONLY
def test_app_role_sees_no_other_tenants_credentials_when_the_old_lookup_switch_is_set(
    app: Flask, tenant: TenantCtx, other_tenant: TenantCtx
) -> None:
    with app.app_context(), db.engine.connect() as conn:
        conn.exec_driver_sql("SELECT set_config('abowerk.auth_lookup', 'on', true)")
        assert conn.execute(sa.text("SELECT count(*) FROM api_keys")).scalar() == 0
        assert conn.execute(sa.text("SELECT count(*) FROM oauth_clients")).scalar() == 0
        conn.exec_driver_sql(
            "SELECT set_config('abowerk.tenant_id', %(t)s, true)", {"t": tenant.tenant_id}
        )
        ids = conn.execute(sa.text("SELECT tenant_id FROM api_keys")).scalars().all()
        assert set(ids) == {tenant.tenant_id}


@POSTGRES_ONLY
def test_lookup_function_sets_the_keys_tenant_for_its_transaction_only_when_the_hash_matches(
    app: Flask, tenant: TenantCtx
) -> None:
    setting = sa.text("SELECT current_setting('abowerk.tenant_id', true)")
    find = sa.text("SELECT tenant_id FROM abowerk_find_api_key(:h)")
    with app.app_context(), db.engine.connect() as conn:
        assert conn.execute(find, {"h": hash_secret("sk_test_unknown")}).all() == []
        assert conn.execute(setting).scalar() in (None, "")
        assert conn.execute(sa.text("SELECT count(*) FROM customers")).scalar() == 0
        conn.rollback()
        found = conn.execute(find, {"h": hash_secret(tenant.api_key)}).scalar()
        assert found == tenant.tenant_id
        assert conn.execute(setting).scalar() == tenant.tenant_id
        conn.rollback()
        assert conn.execute(setting).scalar() in (None, "")  # gone with the transaction


@POSTGRES_ONLY
def test_lookup_functions_run_with_a_fixed_search_path_and_only_for_the_app_role(
    owner_engine: sa.Engine,
) -> None:
    with owner_engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT p.proname, p.prosecdef, p.proconfig, "
                "has_function_privilege('public', p.oid, 'EXECUTE') AS public_may "
                "FROM pg_proc p WHERE p.proname LIKE 'abowerk_find_%'"
            )
        ).all()
    assert {r.proname for r in rows} == {"abowerk_find_api_key", "abowerk_find_oauth_client"}
    for row in rows:
        assert row.prosecdef is True
        assert row.proconfig == ["search_path=pg_catalog, pg_temp"]
        assert row.public_may is False


@pytest.mark.skipif(not REDIS_URL and not IN_CI, reason="set ABOWERK_TEST_REDIS_URL")
def test_rate_limit_headers_count_down_from_the_increments_when_counters_are_in_redis(
    app: Flask, database_url: str, tmp_path: Path, tenant: TenantCtx
) -> None:
    import redis

    redis.Redis.from_url(REDIS_URL).flushdb()  # a dedicated test database number
    limited = create_app(
        {
            "ENVIRON": make_environ(
                database_url,
                tmp_path,
                ABOWERK_REDIS_URL=REDIS_URL,
                ABOWERK_RATE_LIMIT="5 per minute;1000 per hour",
            )
        }
    )
    try:
        client = limited.test_client()
        seen = []
        for _ in range(6):
            resp = client.get("/v1/customers", headers=tenant.headers)
            seen.append(
                (
                    resp.status_code,
                    resp.headers.get("X-RateLimit-Limit"),
                    resp.headers.get("X-RateLimit-Remaining"),
                )
            )
            reset = int(resp.headers["X-RateLimit-Reset"])
            assert 0 < reset - int(time.time()) <= 61
        assert seen == [
            (200, "5", "4"),
            (200, "5", "3"),
            (200, "5", "2"),
            (200, "5", "1"),
            (200, "5", "0"),
            (429, "5", "0"),
        ]
    finally:
        with limited.app_context():
            db.engine.dispose()


@pytest.mark.skipif(not REDIS_URL and not IN_CI, reason="set ABOWERK_TEST_REDIS_URL")
def test_both_rate_limits_take_one_redis_call_and_a_breach_stops_the_count_when_in_redis(
    app: Flask, database_url: str, tmp_path: Path, tenant: TenantCtx
) -> None:
    import redis

    store = redis.Redis.from_url(REDIS_URL)
    store.flushdb()  # a dedicated test database number
    limited = create_app(
        {
            "ENVIRON": make_environ(
                database_url,
                tmp_path,
                ABOWERK_REDIS_URL=REDIS_URL,
                ABOWERK_RATE_LIMIT="2 per minute;1000 per hour",
            )
        }
    )
    from saas.http.ratelimit import _INCR_MANY

    store.script_load(_INCR_MANY)  # as after the first request of any process
    # every command the limiter sends to Redis, counted where the client sends it
    redis_counters = limited.extensions["abowerk_limiter"]._redis
    assert redis_counters is not None
    calls: list[str] = []
    client_calls = redis_counters._client.execute_command

    def counted(*args: Any, **kw: Any) -> Any:
        calls.append(str(args[0]))
        return client_calls(*args, **kw)

    redis_counters._client.execute_command = counted
    try:
        client = limited.test_client()
        seen = []
        for _ in range(3):
            resp = client.get("/v1/customers", headers=tenant.headers)
            seen.append((resp.status_code, resp.headers.get("X-RateLimit-Remaining")))
        assert seen == [(200, "1"), (200, "0"), (429, "0")]
        assert calls == ["EVALSHA"] * 3  # one round trip per request
        counts = {
            key.decode().rsplit("/", 1)[-1]: int(store.get(key) or 0)
            for pattern in ("*/2/1/minute", "*/1000/1/hour")  # this test's two limits
            for key in store.scan_iter(pattern)
        }
        # the refused request stopped at the minute's breach and did not count against the hour
        assert counts == {"minute": 3, "hour": 2}
    finally:
        store.flushdb()
        with limited.app_context():
            db.engine.dispose()


@POSTGRES_ONLY
def test_tenant_setting_is_written_again_when_a_savepoint_that_changed_it_rolled_back(
    app: Flask, tenant: TenantCtx, other_tenant: TenantCtx
) -> None:
    setting = sa.text("SELECT current_setting('abowerk.tenant_id', true)")
    with app.app_context():
        session = db.session
        tenancy.set_tenant(session, tenant.tenant_id)
        assert session.execute(setting).scalar() == tenant.tenant_id
        savepoint = session.begin_nested()
        tenancy.set_tenant(session, other_tenant.tenant_id)
        assert session.execute(setting).scalar() == other_tenant.tenant_id
        savepoint.rollback()  # PostgreSQL puts the setting back to the first tenant
        assert session.execute(setting).scalar() == tenant.tenant_id
        tenancy.set_tenant(session, other_tenant.tenant_id)  # so this must write it again
        assert session.execute(setting).scalar() == other_tenant.tenant_id
        session.rollback()
        db.session.remove()


@pytest.mark.skipif(not REDIS_URL and not IN_CI, reason="set ABOWERK_TEST_REDIS_URL")
def test_tasks_after_a_commit_with_events_go_to_redis_in_one_call_and_in_order(
    app: Flask, database_url: str, tmp_path: Path, tenant: TenantCtx, restore_huey: None
) -> None:
    import redis

    from saas import worker

    store = redis.Redis.from_url(REDIS_URL)
    store.flushdb()  # a dedicated test database number
    queued = create_app(
        {
            "ENVIRON": make_environ(
                database_url, tmp_path, ABOWERK_REDIS_URL=REDIS_URL, ABOWERK_TASKS_IMMEDIATE=""
            )
        }
    )
    conn = worker.huey.storage.conn
    pushes: list[int] = []
    real_lpush = conn.lpush

    def lpush(name: str, *values: bytes) -> Any:
        pushes.append(len(values))
        return real_lpush(name, *values)

    conn.lpush = lpush
    try:
        resp = queued.test_client().post("/v1/customers", json=CUSTOMER, headers=tenant.headers)
        assert resp.status_code == 201, resp.json
        assert pushes == [2]  # the delivery run and the metrics sync: one round trip
        popped = []
        while (data := worker.huey.storage.dequeue()) is not None:
            task = worker.huey.deserialize_task(data)
            popped.append((task.name, task.args))
        # the consumer's order is the order they were asked for
        assert popped == [
            ("deliver_webhooks", (tenant.tenant_id,)),
            ("sync_metrics", (tenant.tenant_id,)),
        ]
    finally:
        store.flushdb()
        with queued.app_context():
            db.engine.dispose()
