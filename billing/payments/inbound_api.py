# mypy: disable-error-code="untyped-decorator, misc"
# (flask-smorest ships no type hints: its decorators and Blueprint base are Any)
"""``POST /stripe/webhooks/{tenant id}``: Stripe's events for one tenant.

Outside ``/v1`` on purpose: the caller is Stripe, which has no API key of ours; the request is
authenticated by its ``Stripe-Signature`` over the raw body (:mod:`billing.payments.inbound`).
"""

from __future__ import annotations

from typing import Any

from flask import Response, request
from flask.views import MethodView

from billing.payments.errors import InvalidStripeSignatureError
from billing.payments.inbound import receive_stripe_event
from saas.extensions import session
from saas.http.api import Blueprint
from saas.http.problems import problem
from saas.kernel.clock import utcnow

blp = Blueprint(
    "stripe_webhooks",
    __name__,
    url_prefix="/stripe/webhooks",
    description="Inbound Stripe events, authenticated by Stripe's signature (no API key)",
)


@blp.route("/<tenant_id>")
class StripeWebhook(MethodView):
    @blp.response(200)
    @blp.problems(400, 404, 409, 413, 429)
    @blp.doc(security=[])
    def post(self, tenant_id: str) -> Response | dict[str, Any]:
        """Receive a Stripe event (verified by `Stripe-Signature`; replays are absorbed)."""
        if not (1 <= len(tenant_id) <= 40):
            return problem(404, "stripe_webhook_unknown_tenant", "Not found")
        try:
            received = receive_stripe_event(
                session(),
                tenant_id,
                request.get_data(cache=False),
                request.headers.get("Stripe-Signature"),
                now=utcnow(),
            )
        except InvalidStripeSignatureError as exc:
            # 400, not 422: Stripe treats any 4xx as "do not retry this body", and the
            # payload itself was never looked at
            return problem(400, exc.code, exc.title, str(exc))
        return {
            "received": True,
            "event_id": received.event_id,
            "outcome": received.outcome,
            "replayed": received.replayed,
        }
