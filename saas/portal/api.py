"""`POST /v1/portal/sessions` (scope `portal:write`): a one-time link into the customer
portal, as Stripe's billing portal sessions. The URL is shown once; it works once and for
five minutes (`saas.portal.services`)."""

from __future__ import annotations

from typing import Any

from flask import url_for
from flask.views import MethodView

from saas.auth.middleware import current_principal, requires
from saas.extensions import session
from saas.http.api import Blueprint
from saas.kernel.clock import utcnow
from saas.portal import services
from saas.portal.schemas import PortalSessionCreateSchema, PortalSessionSchema

blp = Blueprint(
    "portal_sessions",
    __name__,
    url_prefix="/v1/portal/sessions",
    description="Customer portal sessions: one-time links into the self-service portal",
)


@blp.route("")
class PortalSessionCollection(MethodView):
    @blp.arguments(PortalSessionCreateSchema)
    @blp.response(201, PortalSessionSchema)
    @blp.problems(400, 401, 403, 404, 413, 422, 429)
    @requires("portal", "write")
    def post(self, data: dict[str, Any]) -> dict[str, Any]:
        """Create a one-time portal link for a customer (expires in 5 minutes, works once)."""
        issued = services.create_portal_link(
            session(),
            customer_id=data["customer_id"],
            return_url=data["return_url"],
            locale=data["locale"],
            actor=current_principal().credential_id,
            now=utcnow(),
        )
        link = issued.link
        return {
            "id": link.id,
            "livemode": link.livemode,
            "customer_id": link.customer_id,
            "url": url_for("portal.start", token=issued.token, _external=True),
            "return_url": link.return_url,
            "locale": link.locale,
            "created_at": link.created_at,
            "expires_at": link.expires_at,
        }
