# mypy: disable-error-code="untyped-decorator, misc"
# (flask-smorest ships no type hints: its decorators and Blueprint base are Any)
"""``/v1/billing-runs`` (scope ``billing``, read): a tenant's billing runs and their progress."""

from __future__ import annotations

from typing import Any

from flask import request
from flask.views import MethodView

from billing.runs import queries
from billing.runs import tasks as _tasks  # noqa: F401  (registers the run tasks)
from billing.runs.models import BillingRun
from billing.runs.schemas import BillingRunListArgs, BillingRunListOut, BillingRunOut
from saas.auth.middleware import requires
from saas.extensions import session
from saas.http.api import Blueprint
from saas.kernel.pagination import list_envelope

blp = Blueprint(
    "billing_runs",
    __name__,
    url_prefix="/v1/billing-runs",
    description="Billing runs: progress and outcome of invoicing what fell due",
)


@blp.route("")
class BillingRunCollection(MethodView):
    @blp.arguments(BillingRunListArgs, location="query")
    @blp.response(200, BillingRunListOut)
    @blp.problems(400, 401, 403, 422, 429)
    @requires("billing", "read")
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """List billing runs, newest first."""
        rows, has_more = queries.list_billing_runs(
            session(),
            limit=args["limit"],
            starting_after=args["starting_after"],
            status=args["status"],
        )
        return list_envelope(request.path, rows, has_more)


@blp.route("/<run_id>")
class BillingRunItem(MethodView):
    @blp.response(200, BillingRunOut)
    @blp.problems(401, 403, 404, 429)
    @requires("billing", "read")
    def get(self, run_id: str) -> BillingRun:
        """One billing run: its counters grow batch by batch while it runs."""
        return queries.get_billing_run(session(), run_id)
