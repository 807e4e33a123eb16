"""The background worker: Huey, embedded on SQLite by default, on Redis across machines.

`abowerk worker` runs the consumer with its scheduler. Storage: a SQLite file under
ABOWERK_VAR_DIR, or Redis when ABOWERK_REDIS_URL is set; tests switch to immediate mode
(tasks run inline, in memory). Every task takes its tenant id and opens its own tenant-bound
session (saas.kernel.tasks.tenant_session); periodic tasks fan out one task per tenant.

Tasks:
- deliver_webhooks(tenant_id): queued after every commit that recorded events, and every
  minute by `webhooks_tick` for retries whose time has come;
- advance_subscriptions(tenant_id): every minute via `subscriptions_tick`: trial ends,
  renewals, scheduled changes in real time (test clocks advance their own subscriptions);
- purge_idempotency_keys: hourly;
- billing_tick (billing.runs.tasks): every 15 minutes, a billing run over the active tenants,
  one `run_billing(tenant_id, run_id)` task per tenant; `render_run_documents` per batch;
- sync_metrics(tenant_id): queued after every commit that recorded events, and every five
  minutes by `metrics_tick`: the MRR movement ledger follows the subscription history.
- dunning_retries(tenant_id): every minute via `dunning_tick`: the due payment retries of
  dunning cases (customers on a test clock by their clock's time; billing.dunning);
- deliver_mail(tenant_id): every minute via `mail_tick`: the e-mail outbox over SMTP
  (saas.mail.sender), retried with backoff while the server is away.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

import sqlalchemy as sa
from flask import Flask, current_app, has_app_context
from huey import Huey, crontab
from huey.signals import SIGNAL_ENQUEUED
from huey.storage import MemoryStorage, RedisStorage, SqliteStorage

from saas.events import services as events
from saas.extensions import db
from saas.kernel.clock import utcnow
from saas.kernel.errors import ConflictError
from saas.kernel.secretbox import SecretBox
from saas.kernel.tasks import tenant_session
from saas.tenants.models import Tenant

# Created inert (immediate, in memory) so that importing this module touches no file and no
# network; bind_app points it at the app's configured storage.
huey = Huey("abowerk", immediate=True, utc=True, storage_class=MemoryStorage)
_bound_app: Flask | None = None


def bind_app(app: Flask) -> None:
    """Configure the queue from the app's settings; tasks use this app's database when no
    app context is active (in the worker process)."""
    global _bound_app  # noqa: PLW0603  (one app per worker process)
    _bound_app = app
    settings = app.config["ABOWERK_SETTINGS"]
    if settings.redis_url:
        huey.storage_class = RedisStorage
        huey.storage_kwargs = {"url": settings.redis_url}
    else:
        settings.var_dir.mkdir(parents=True, exist_ok=True)
        huey.storage_class = SqliteStorage
        huey.storage_kwargs = {"filename": str(settings.var_dir / "huey.sqlite3")}
    huey._immediate = bool(settings.tasks_immediate)  # the setter would not rebuild storage
    huey.storage = huey.create_storage()


@contextmanager
def app_context() -> Iterator[Flask]:
    if has_app_context():
        yield current_app._get_current_object()  # type: ignore[attr-defined]
        return
    if _bound_app is None:
        raise RuntimeError("no Flask app bound to the worker (saas.worker.bind_app)")
    with _bound_app.app_context():
        yield _bound_app


def secret_box(app: Flask) -> SecretBox:
    settings = app.config["ABOWERK_SETTINGS"]
    return SecretBox(settings.secret_key, settings.previous_secret_keys)


@huey.task()
def deliver_webhooks(tenant_id: str) -> int:
    from saas.webhooks.delivery import deliver_for_tenant

    with app_context() as app:
        return deliver_for_tenant(db.engine, secret_box(app), tenant_id, clock=utcnow)


@huey.task()
def advance_subscriptions(tenant_id: str) -> int:
    """Trial ends, renewals, scheduled changes and cancellations that fell due (real time)."""
    with app_context():
        return advance_tenant(db.engine, tenant_id, now=utcnow())


def advance_tenant(engine: sa.Engine, tenant_id: str, *, now: datetime) -> int:
    from sqlalchemy.orm.exc import StaleDataError

    from saas.subscriptions.services import advance_subscriptions as advance

    with tenant_session(engine, tenant_id) as session:
        try:
            moved = advance(session, tenant_id, now)
            session.commit()
        except (StaleDataError, ConflictError):
            # a request changed one of these subscriptions meanwhile; the next tick catches up
            session.rollback()
            return 0
    return len(moved)


@huey.periodic_task(crontab(minute="*"))
def subscriptions_tick() -> None:
    with app_context():
        for tenant_id in _tenant_ids():
            advance_subscriptions(tenant_id)


def _tenant_ids() -> list[str]:
    with db.engine.connect() as conn:
        return list(conn.execute(sa.select(Tenant.id).where(Tenant.status == "active")).scalars())


@huey.periodic_task(crontab(minute="*"))
def webhooks_tick() -> None:
    with app_context():
        for tenant_id in _tenant_ids():
            deliver_webhooks(tenant_id)


@huey.periodic_task(crontab(minute="7"))
def purge_idempotency_keys() -> int:
    from saas.http.idempotency import purge_expired

    with app_context():
        return purge_expired(db.engine, now=utcnow())


@huey.task()
def sync_metrics(tenant_id: str) -> int:
    """Bring the MRR movement ledger up to the subscription history (billing.metrics)."""
    from saas.metrics.jobs import sync_tenant

    with app_context():
        return sync_tenant(db.engine, tenant_id, now=utcnow())


@huey.periodic_task(crontab(minute="*/5"))
def metrics_tick() -> None:
    with app_context():
        for tenant_id in _tenant_ids():
            sync_metrics(tenant_id)


@huey.task()
def dunning_retries(tenant_id: str) -> dict[str, int]:
    """Run the tenant's due dunning retries through the payments module's collection."""
    import logging

    from billing.dunning.jobs import run_due_retries
    from billing.dunning.services import default_collector

    collector = default_collector()
    if collector is None:
        # no payments module to collect with: the retries stay scheduled, nothing is faked
        logging.getLogger("abowerk.dunning").warning("no collector: dunning retries wait")
        return {}
    with app_context():
        return run_due_retries(db.engine, tenant_id, now=utcnow(), collector=collector)


@huey.periodic_task(crontab(minute="*"))
def dunning_tick() -> None:
    with app_context():
        for tenant_id in _tenant_ids():
            dunning_retries(tenant_id)


@huey.task()
def deliver_mail(tenant_id: str) -> int:
    """Send the tenant's due outbox mails (nothing while ABOWERK_SMTP_HOST is unset)."""
    from saas.mail.sender import SmtpSettings, deliver_pending

    with app_context() as app:
        smtp = SmtpSettings.from_settings(app.config["ABOWERK_SETTINGS"])
        return deliver_pending(db.engine, tenant_id, smtp, now=utcnow()).sent


@huey.periodic_task(crontab(minute="*"))
def mail_tick() -> None:
    with app_context() as app:
        if not app.config["ABOWERK_SETTINGS"].smtp_host:
            return
        for tenant_id in _tenant_ids():
            deliver_mail(tenant_id)


def _queue_after_events(tenant_ids: set[str]) -> None:
    """After a commit that recorded events: a webhook delivery run, then the metrics ledger's
    sync, per tenant. On Redis all of them go out in one LPUSH (one round trip per commit
    instead of one per task); the consumer pops from the other end, so it still sees them in
    this order."""
    tenants = sorted(tenant_ids)
    tasks = [deliver_webhooks.s(t) for t in tenants] + [sync_metrics.s(t) for t in tenants]
    storage = huey.storage
    plain = not any(task.expires or task.priority for task in tasks)
    if huey.immediate or type(storage) is not RedisStorage or not plain:
        for task in tasks:
            huey.enqueue(task)
        return
    for task in tasks:
        huey._emit(SIGNAL_ENQUEUED, task)  # what huey.enqueue does before it stores a task
    storage.conn.lpush(storage.queue_key, *[huey.serialize_task(task) for task in tasks])


events.on_events_committed(_queue_after_events)
