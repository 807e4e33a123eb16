# mypy: disable-error-code="untyped-decorator, misc"
# (flask-smorest ships no type hints: its decorators and Blueprint base are Any)
"""``/v1/invoices`` (scope ``billing``): drafts, finalization, status, PDF and XML."""

from __future__ import annotations

from typing import Any

from flask import Response, request
from flask.views import MethodView

from billing.invoices import queries, rendering, services
from billing.invoices import tasks as _tasks  # noqa: F401  (registers the rendering task)
from billing.invoices.errors import InvoiceNotFinalizedError
from billing.invoices.models import CREDIT_NOTE, DRAFT, OPEN, UNCOLLECTIBLE, Invoice
from billing.invoices.schemas import (
    EmptyIn,
    InvoiceCreateIn,
    InvoiceListArgs,
    InvoiceListOut,
    InvoiceOut,
    LineIn,
    MarkPaidIn,
    VoidIn,
)
from saas.auth.middleware import current_principal, requires
from saas.extensions import session
from saas.http.api import Blueprint, link
from saas.kernel.clock import utcnow
from saas.kernel.pagination import list_envelope

blp = Blueprint(
    "invoices",
    __name__,
    url_prefix="/v1/invoices",
    description="Invoices: drafts, finalization (numbered, frozen), payment status, PDF and XML",
)

WRITE_PROBLEMS = (400, 401, 403, 404, 409, 413, 422, 429, 503)
FILE_PROBLEMS = (401, 403, 404, 409, 429)

_BY_ID = {"invoice_id": "$response.body#/id"}
_GET_INVOICE = link("get", "/v1/invoices/{invoice_id}", "The invoice.", parameters=_BY_ID)
_FINALIZE = link(
    "post",
    "/v1/invoices/{invoice_id}/finalize",
    "Finalize the draft: number it and freeze it.",
    parameters=_BY_ID,
)


def actor() -> str:
    return current_principal().credential_id


def send_document(document_id: str, fmt: str, *, credit_note: bool = False) -> Response:
    """The stored PDF or XML of an invoice (or credit note), rendered and stored first if
    the worker has not yet; read through the driver when stored (see queries.document_head)."""
    s = session()
    load = services.get_credit_note if credit_note else services.get_invoice
    head = queries.document_head(s, document_id)
    if head is None or (head.kind == CREDIT_NOTE) != credit_note:
        load(s, document_id)  # raises the not-found problem of the kind asked for
        raise AssertionError("unreachable")  # pragma: no cover
    if head.status == DRAFT:
        raise InvoiceNotFinalizedError("a draft has no documents: finalize it first")
    stored = queries.stored_document(s, document_id, fmt)
    if stored is None:
        stored = rendering.document(s, load(s, document_id), fmt, now=utcnow())
    response = Response(stored.content, mimetype=stored.media_type)
    filename = f"{head.number}.{fmt}".replace("/", "-")
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    response.headers["ETag"] = f'"{stored.sha256}"'
    response.headers["X-Content-SHA256"] = stored.sha256
    response.headers["Cache-Control"] = "private, max-age=31536000, immutable"
    return response


@blp.route("")
class InvoiceCollection(MethodView):
    @blp.arguments(InvoiceListArgs, location="query")
    @blp.response(200, InvoiceListOut)
    @blp.problems(400, 401, 403, 422, 429)
    @requires("billing", "read")
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """List invoices, newest first (filters: status, customer, issue date range)."""
        rows, has_more = queries.list_invoices(
            session(),
            limit=args["limit"],
            starting_after=args["starting_after"],
            status=args["status"],
            customer_id=args["customer_id"],
            issued_from=args["issued_from"],
            issued_to=args["issued_to"],
        )
        return list_envelope(request.path, rows, has_more)

    @blp.arguments(InvoiceCreateIn)
    @blp.response(201, InvoiceOut)
    @blp.links(
        201,
        GetInvoice=_GET_INVOICE,
        AddLine=link(
            "post", "/v1/invoices/{invoice_id}/lines", "Add a line to the draft.", parameters=_BY_ID
        ),
        FinalizeInvoice=_FINALIZE,
    )
    @blp.problems(*WRITE_PROBLEMS)
    @requires("billing", "write")
    def post(self, data: dict[str, Any]) -> Invoice:
        """Create a one-off draft invoice for a customer (lines optional)."""
        return services.create_draft(session(), data, now=utcnow())


@blp.route("/<invoice_id>")
class InvoiceItem(MethodView):
    @blp.response(200, InvoiceOut)
    @blp.problems(401, 403, 404, 429)
    @requires("billing", "read")
    def get(self, invoice_id: str) -> Invoice:
        """Get an invoice."""
        return services.get_invoice(session(), invoice_id)


@blp.route("/<invoice_id>/lines")
class InvoiceLines(MethodView):
    @blp.arguments(LineIn)
    @blp.response(201, InvoiceOut)
    @blp.links(201, GetInvoice=_GET_INVOICE, FinalizeInvoice=_FINALIZE)
    @blp.problems(*WRITE_PROBLEMS)
    @requires("billing", "write")
    def post(self, data: dict[str, Any], invoice_id: str) -> Invoice:
        """Add a line to a draft; returns the invoice."""
        return services.add_line(session(), invoice_id, data, now=utcnow())


@blp.route("/<invoice_id>/lines/<line_id>")
class InvoiceLineItem(MethodView):
    @blp.response(200, InvoiceOut)
    @blp.problems(401, 403, 404, 409, 429)
    @requires("billing", "write")
    def delete(self, invoice_id: str, line_id: str) -> Invoice:
        """Remove a line from a draft; returns the invoice."""
        return services.remove_line(session(), invoice_id, line_id, now=utcnow())


@blp.route("/<invoice_id>/finalize")
class InvoiceFinalize(MethodView):
    @blp.arguments(EmptyIn)
    @blp.response(200, InvoiceOut)
    @blp.links(
        200,
        GetInvoice=_GET_INVOICE,
        ListPayments=link(
            "get",
            "/v1/invoices/{invoice_id}/payments",
            "Its payments and what is still owed.",
            parameters=_BY_ID,
        ),
    )
    @blp.problems(*WRITE_PROBLEMS)
    @requires("billing", "write")
    def post(self, _data: dict[str, Any], invoice_id: str) -> Invoice:
        """Decide the VAT of every line, freeze the content and give it the next number.
        The PDF and XML are rendered afterwards by the worker."""
        return services.finalize_invoice(session(), invoice_id, actor=actor(), now=utcnow())


@blp.route("/<invoice_id>/mark_paid")
class InvoiceMarkPaid(MethodView):
    @blp.arguments(MarkPaidIn)
    @blp.response(200, InvoiceOut)
    @blp.problems(*WRITE_PROBLEMS)
    @requires("billing", "write")
    def post(self, data: dict[str, Any], invoice_id: str) -> Invoice:
        """Record that the invoice was paid in full outside abowerk (open or uncollectible →
        paid). What is still owed is booked as a manual payment (reference
        `mark_paid:<invoice id>`), so it is received consideration for § 19 UStG, shows in
        `/v1/payments` and closes a dunning case, exactly like `POST …/payments`."""
        from billing.payments import services as payments  # payments build on invoices

        db_session, now = session(), utcnow()
        invoice = services.get_invoice(db_session, invoice_id)
        if invoice.status not in (OPEN, UNCOLLECTIBLE):
            return services.mark_paid(db_session, invoice_id, data, now=now)  # refuses it
        remaining = payments.amount_remaining(db_session, invoice)
        if remaining > 0:
            payments.record_manual_payment(
                db_session,
                invoice_id,
                {
                    "reference": f"mark_paid:{invoice_id}",
                    "amount": remaining,
                    "currency": invoice.currency,
                    "received_at": data.get("paid_at"),
                    "note": data.get("note"),
                },
                now=now,
            )
            invoice = services.get_invoice(db_session, invoice_id)
        if invoice.status in (OPEN, UNCOLLECTIBLE):  # nothing owed (credited): paid as it is
            return services.mark_paid(db_session, invoice_id, data, now=now)
        if data.get("note") is not None:
            services.annotate_payment(db_session, invoice_id, data["note"], now=now)
        return invoice


@blp.route("/<invoice_id>/mark_uncollectible")
class InvoiceMarkUncollectible(MethodView):
    @blp.arguments(EmptyIn)
    @blp.response(200, InvoiceOut)
    @blp.problems(*WRITE_PROBLEMS)
    @requires("billing", "write")
    def post(self, _data: dict[str, Any], invoice_id: str) -> Invoice:
        """Write an open invoice off as uncollectible."""
        return services.mark_uncollectible(session(), invoice_id, now=utcnow())


@blp.route("/<invoice_id>/void")
class InvoiceVoid(MethodView):
    @blp.arguments(VoidIn)
    @blp.response(200, InvoiceOut)
    @blp.problems(*WRITE_PROBLEMS)
    @requires("billing", "write")
    def post(self, data: dict[str, Any], invoice_id: str) -> Invoice:
        """Cancel an open or uncollectible invoice: a credit note for everything not yet
        credited is issued, and the invoice becomes `void`."""
        return services.void_invoice(session(), invoice_id, data, actor=actor(), now=utcnow())


@blp.route("/<invoice_id>/pdf")
class InvoicePdf(MethodView):
    @blp.response(200, content_type="application/pdf")
    @blp.problems(*FILE_PROBLEMS)
    @requires("billing", "read")
    def get(self, invoice_id: str) -> Response:
        """The PDF/A-3 (Factur-X, EN 16931 XML embedded), byte-identical on every download."""
        return send_document(invoice_id, rendering.PDF)


@blp.route("/<invoice_id>/xml")
class InvoiceXml(MethodView):
    @blp.response(200, content_type="application/xml")
    @blp.problems(*FILE_PROBLEMS)
    @requires("billing", "read")
    def get(self, invoice_id: str) -> Response:
        """The EN 16931 CII XML (the e-invoice), byte-identical on every download."""
        return send_document(invoice_id, rendering.XML)
