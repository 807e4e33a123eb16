"""Invoice numbers: the pattern language, and consecutive unique numbers under real
concurrency (eight processes, each with its own engine, on PostgreSQL)."""

from __future__ import annotations

import multiprocessing
from datetime import UTC, date, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from billing.numbering import PatternError, parse_pattern
from tests.conftest import POSTGRES_ONLY, TenantCtx

PROCESSES = 8
PER_PROCESS = 5


# --- the pattern language (pure) ------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "issued_on", "seq", "number", "bucket"),
    [
        ("RE-{year}-{seq:05}", date(2026, 3, 1), 42, "RE-2026-00042", "RE-2026-{seq}"),
        ("RE-{year}-{seq:05}", date(2026, 3, 1), 123456, "RE-2026-123456", "RE-2026-{seq}"),
        ("{year}/{month}/{seq}", date(2026, 3, 1), 7, "2026/03/7", "2026/03/{seq}"),
        ("R{seq:3}", date(2026, 3, 1), 7, "R007", "R{seq}"),
        ("GS_{seq:012}", date(2026, 3, 1), 1, "GS_000000000001", "GS_{seq}"),
    ],
)
def test_pattern_renders_number_and_bucket_when_valid(
    pattern: str, issued_on: date, seq: int, number: str, bucket: str
) -> None:
    parsed = parse_pattern(pattern)
    assert parsed.render(issued_on, seq) == number
    assert parsed.bucket(issued_on) == bucket


@pytest.mark.parametrize(
    "pattern",
    [
        "RE-{year}",  # no running number
        "{seq}{seq}",
        "{seq:13}",
        "{seq:x}",
        "{year:02}{seq}",
        "{day}{seq}",
        "{seq.__class__}",
        "{seq!r}",
        "RE {seq}",  # a space
        "RE-{seq",
        "RE-}{seq}",
        "X" * 60 + "{seq:05}",  # longer than 64 characters
        "test-{seq}",  # reserved for test mode
    ],
)
def test_pattern_is_refused_when_invalid(pattern: str) -> None:
    with pytest.raises(PatternError):
        parse_pattern(pattern)


# --- eight processes finalizing at once -------------------------------------------------------


def _finalize_in_process(
    url: str,
    tenant_id: str,
    contested: str,
    own: list[str],
    barrier: Any,
    results: Any,
) -> None:
    """One process: its own engine (as the RLS-bound app role), one transaction per invoice."""
    import saas.models  # noqa: F401  (every mapper)
    from billing.invoices import services
    from billing.invoices.errors import InvoiceConflictError, InvoiceNotDraftError
    from saas.extensions import configure_engine
    from saas.kernel.tasks import tenant_session

    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    configure_engine(engine, app_role="abowerk_app")
    outcome: list[tuple[str, str | None]] = []
    barrier.wait(timeout=120)
    try:
        for invoice_id in [contested, *own]:
            with tenant_session(engine, tenant_id) as session:
                try:
                    invoice = services.finalize_invoice(
                        session, invoice_id, actor="numbering-test", now=datetime.now(UTC)
                    )
                    session.commit()
                    outcome.append((invoice_id, invoice.number))
                except (InvoiceNotDraftError, InvoiceConflictError):
                    session.rollback()
                    outcome.append((invoice_id, None))
    finally:
        results.put(outcome)
        engine.dispose()


@POSTGRES_ONLY
@pytest.mark.slow
def test_eight_processes_get_consecutive_unique_numbers_when_finalizing_at_once(
    app: Flask, client: FlaskClient, tenant: TenantCtx, owner_engine: sa.Engine
) -> None:
    from saas.extensions import db
    from tests.api.test_invoices import make_customer, make_draft

    customer_id = make_customer(client, tenant)
    drafts = [
        make_draft(client, tenant, customer_id=customer_id)["id"]
        for _ in range(PROCESSES * PER_PROCESS + 1)
    ]
    contested, own = drafts[0], drafts[1:]
    with app.app_context():
        url = db.engine.url.render_as_string(hide_password=False)
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(PROCESSES)
    results = context.Queue()
    processes = [
        context.Process(
            target=_finalize_in_process,
            args=(
                url,
                tenant.tenant_id,
                contested,  # every process also races for this one invoice
                own[i * PER_PROCESS : (i + 1) * PER_PROCESS],
                barrier,
                results,
            ),
        )
        for i in range(PROCESSES)
    ]
    for process in processes:
        process.start()
    outcomes = [results.get(timeout=300) for _ in processes]
    for process in processes:
        process.join(timeout=60)
        assert process.exitcode == 0

    numbers = [number for outcome in outcomes for _, number in outcome if number is not None]
    contested_wins = [n for outcome in outcomes for i, n in outcome if i == contested and n]
    assert len(contested_wins) == 1  # one process numbered it, the others were refused
    year = datetime.now(UTC).year
    expected = [f"TEST-RE-{year}-{seq:05d}" for seq in range(1, len(drafts) + 1)]
    assert sorted(numbers) == expected  # consecutive: no duplicate, no gap
    with owner_engine.connect() as conn:
        stored = conn.execute(
            sa.text("SELECT number FROM invoices WHERE number IS NOT NULL ORDER BY number")
        ).scalars()
        assert list(stored) == expected
        assert conn.execute(sa.text("SELECT count(*) FROM invoice_number_skips")).scalar() == 0
        last = conn.execute(sa.text("SELECT last_seq FROM invoice_number_counters")).scalar()
        assert last == len(drafts)
