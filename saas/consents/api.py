"""``GET/POST /v1/customers/{id}/consents`` (scope ``customers``: consents are customer data)."""

from __future__ import annotations

from typing import Any

from flask import request
from flask.views import MethodView

from saas.auth.middleware import requires
from saas.consents import services
from saas.consents.models import Consent
from saas.consents.schemas import ConsentIn, ConsentListOut, ConsentOut
from saas.extensions import session
from saas.http.api import Blueprint
from saas.kernel.clock import utcnow
from saas.kernel.pagination import list_envelope

blp = Blueprint(
    "consents",
    __name__,
    url_prefix="/v1/customers",
    description="Consents a customer gave or withdrew (Art. 7 GDPR)",
)


@blp.route("/<customer_id>/consents")
class ConsentCollection(MethodView):
    @blp.response(200, ConsentListOut)
    @blp.problems(401, 403, 404, 429)
    @requires("customers", "read")
    def get(self, customer_id: str) -> dict[str, Any]:
        """Every consent record of the customer, newest first (withdrawn ones included)."""
        rows = services.list_consents(session(), customer_id)
        return list_envelope(request.path, rows, False)

    @blp.arguments(ConsentIn)
    @blp.response(201, ConsentOut)
    @blp.problems(400, 401, 403, 404, 409, 413, 422, 429)
    @requires("customers", "write")
    def post(self, data: dict[str, Any], customer_id: str) -> Consent:
        """Record a consent (`granted: true`) or withdraw the active one (`granted: false`)."""
        return services.record_consent(session(), customer_id, data, now=utcnow())
