# mypy: disable-error-code="untyped-decorator"
# (huey ships no type hints for its task decorator)
"""Worker tasks of invoicing (shell layer: wires the domain to the Huey queue).

``render_invoice_documents(tenant_id, invoice_id)`` is queued after every commit that
finalized an invoice or issued a credit note (:func:`billing.invoices.rendering
.request_documents`); it renders the PDF and the XML from the stored snapshot in its own
tenant-bound transaction. It is idempotent: documents already stored are left alone, so a
retry or a download that came first changes nothing. A billing run's transaction therefore
never waits for PDFs.
"""

from __future__ import annotations

import logging

from billing.invoices import rendering
from billing.invoices.models import Invoice
from saas.extensions import db
from saas.kernel.clock import utcnow
from saas.kernel.tasks import tenant_session
from saas.worker import app_context, huey

log = logging.getLogger("abowerk.billing")


@huey.task(retries=3, retry_delay=30)
def render_invoice_documents(tenant_id: str, invoice_id: str) -> int:
    """Render and store the PDF and XML of one finalized invoice or credit note."""
    with app_context(), tenant_session(db.engine, tenant_id) as session:
        invoice = session.get(Invoice, (tenant_id, invoice_id))
        if invoice is None or invoice.snapshot_json is None:
            log.warning("no finalized invoice to render", extra={"invoice_id": invoice_id})
            return 0
        rendered = rendering.render_documents(session, invoice, now=utcnow())
        session.commit()
        return rendered


def _queue(pending: list[tuple[str, str]]) -> None:
    for tenant_id, invoice_id in pending:
        try:
            render_invoice_documents(tenant_id, invoice_id)
        except Exception:
            # the commit already happened; a lost render is redone by the first download
            log.exception("could not queue invoice rendering", extra={"invoice_id": invoice_id})


rendering.on_documents_requested(_queue)
