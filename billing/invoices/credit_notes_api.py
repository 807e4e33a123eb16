# mypy: disable-error-code="untyped-decorator, misc"
# (flask-smorest ships no type hints: its decorators and Blueprint base are Any)
"""``/v1/credit-notes`` (scope ``billing``): credit notes correcting finalized invoices.

The path is snake_case like every other abowerk resource (``/v1/test_clocks``,
``/v1/webhook_endpoints``).
"""

from __future__ import annotations

from typing import Any

from flask import Response, request
from flask.views import MethodView

from billing.invoices import queries, rendering, services
from billing.invoices.api import FILE_PROBLEMS, WRITE_PROBLEMS, actor, send_document
from billing.invoices.models import Invoice
from billing.invoices.schemas import (
    CreditNoteCreateIn,
    CreditNoteListArgs,
    CreditNoteListOut,
    CreditNoteOut,
)
from saas.auth.middleware import requires
from saas.extensions import session
from saas.http.api import Blueprint
from saas.kernel.clock import utcnow
from saas.kernel.pagination import list_envelope

blp = Blueprint(
    "credit_notes",
    __name__,
    url_prefix="/v1/credit-notes",
    description="Credit notes (Stornorechnung, Rechnungskorrektur) correcting invoices",
)


@blp.route("")
class CreditNoteCollection(MethodView):
    @blp.arguments(CreditNoteListArgs, location="query")
    @blp.response(200, CreditNoteListOut)
    @blp.problems(400, 401, 403, 422, 429)
    @requires("billing", "read")
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """List credit notes, newest first (filters: invoice, customer)."""
        rows, has_more = queries.list_credit_notes(
            session(),
            limit=args["limit"],
            starting_after=args["starting_after"],
            invoice_id=args["invoice_id"],
            customer_id=args["customer_id"],
        )
        return list_envelope(request.path, rows, has_more)

    @blp.arguments(CreditNoteCreateIn)
    @blp.response(201, CreditNoteOut)
    @blp.problems(*WRITE_PROBLEMS)
    @requires("billing", "write")
    def post(self, data: dict[str, Any]) -> Invoice:
        """Issue a credit note for a finalized invoice: without `lines` it cancels everything
        not yet credited (Stornorechnung), with `lines` it corrects part of them."""
        return services.create_credit_note(session(), data, actor=actor(), now=utcnow())


@blp.route("/<credit_note_id>")
class CreditNoteItem(MethodView):
    @blp.response(200, CreditNoteOut)
    @blp.problems(401, 403, 404, 429)
    @requires("billing", "read")
    def get(self, credit_note_id: str) -> Invoice:
        """Get a credit note."""
        return services.get_credit_note(session(), credit_note_id)


@blp.route("/<credit_note_id>/pdf")
class CreditNotePdf(MethodView):
    @blp.response(200, content_type="application/pdf")
    @blp.problems(*FILE_PROBLEMS)
    @requires("billing", "read")
    def get(self, credit_note_id: str) -> Response:
        """The credit note's PDF/A-3 with its XML embedded."""
        return send_document(credit_note_id, rendering.PDF, credit_note=True)


@blp.route("/<credit_note_id>/xml")
class CreditNoteXml(MethodView):
    @blp.response(200, content_type="application/xml")
    @blp.problems(*FILE_PROBLEMS)
    @requires("billing", "read")
    def get(self, credit_note_id: str) -> Response:
        """The credit note's EN 16931 CII XML (type 381)."""
        return send_document(credit_note_id, rendering.XML, credit_note=True)
