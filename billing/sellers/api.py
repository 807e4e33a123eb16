# mypy: disable-error-code="untyped-decorator, misc"
# (flask-smorest ships no type hints: its decorators and Blueprint base are Any)
"""``GET/PUT /v1/seller_profile`` (scope ``billing``)."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView

from billing.sellers import services
from billing.sellers.models import SellerProfile
from billing.sellers.schemas import SellerProfileIn, SellerProfileOut
from saas.auth.middleware import requires
from saas.extensions import session
from saas.http.api import Blueprint
from saas.kernel.clock import utcnow

blp = Blueprint(
    "seller_profile",
    __name__,
    url_prefix="/v1/seller_profile",
    description="The seller (tenant) on its invoices: names, tax numbers, bank, branding, "
    "numbering, tax regime",
)


@blp.route("")
class SellerProfileResource(MethodView):
    @blp.response(200, SellerProfileOut)
    @blp.problems(401, 403, 404, 429)
    @requires("billing", "read")
    def get(self) -> SellerProfile:
        """The seller profile of this mode (test and live keep their own)."""
        return services.get_seller_profile(session())

    @blp.arguments(SellerProfileIn)
    @blp.response(200, SellerProfileOut)
    @blp.problems(400, 401, 403, 409, 413, 422, 429)
    @requires("billing", "write")
    def put(self, data: dict[str, Any]) -> SellerProfile:
        """Create or replace the seller profile. Issued invoices keep the data they were
        issued with; only later invoices use the new profile."""
        return services.put_seller_profile(session(), data, now=utcnow())
