from __future__ import annotations

from typing import Any

import marshmallow as ma
from flask import request
from flask.views import MethodView

from saas.auth.middleware import requires
from saas.customers import queries, services
from saas.customers.models import Customer
from saas.customers.schemas import (
    CustomerCreateSchema,
    CustomerListSchema,
    CustomerSchema,
    CustomerUpdateSchema,
)
from saas.extensions import session
from saas.http.api import Blueprint, link
from saas.kernel.clock import utcnow
from saas.kernel.pagination import ListArgs, list_envelope

blp = Blueprint("customers", __name__, url_prefix="/v1/customers", description="Customers")


class CustomerListArgs(ListArgs):
    email = ma.fields.String(load_default=None, metadata={"description": "Exact e-mail match."})


@blp.route("")
class CustomerCollection(MethodView):
    @blp.arguments(CustomerListArgs, location="query")
    @blp.response(200, CustomerListSchema)
    @blp.problems(400, 401, 403, 422, 429)
    @requires("customers", "read")
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """List customers, newest first."""
        rows, has_more = queries.list_customers(
            session(),
            limit=args["limit"],
            starting_after=args["starting_after"],
            email=args["email"],
        )
        return list_envelope(request.path, rows, has_more)

    @blp.arguments(CustomerCreateSchema)
    @blp.response(201, CustomerSchema)
    @blp.links(
        201,
        GetCustomer=link(
            "get",
            "/v1/customers/{customer_id}",
            "The customer just created.",
            parameters={"customer_id": "$response.body#/id"},
        ),
        CreateSubscription=link(
            "post",
            "/v1/subscriptions",
            "Subscribe the customer to a price.",
            request_body={"customer_id": "$response.body#/id"},
        ),
        CreateInvoice=link(
            "post",
            "/v1/invoices",
            "Start a one-off draft invoice for the customer.",
            request_body={"customer_id": "$response.body#/id"},
        ),
    )
    # 404: the test clock named by `test_clock_id` does not exist
    @blp.problems(400, 401, 403, 404, 409, 413, 422, 429)
    @requires("customers", "write")
    def post(self, data: dict[str, Any]) -> Customer:
        """Create a customer."""
        return services.create_customer(session(), data, now=utcnow())


@blp.route("/<customer_id>")
class CustomerItem(MethodView):
    @blp.response(200, CustomerSchema)
    @blp.problems(401, 403, 404, 429)
    @requires("customers", "read")
    def get(self, customer_id: str) -> Any:
        """Get a customer."""
        return queries.customer_view(session(), customer_id)

    @blp.arguments(CustomerUpdateSchema)
    @blp.response(200, CustomerSchema)
    @blp.problems(400, 401, 403, 404, 409, 413, 422, 429)
    @requires("customers", "write")
    def patch(self, data: dict[str, Any], customer_id: str) -> Customer:
        """Update a customer: only the fields sent change."""
        return services.update_customer(session(), customer_id, data, now=utcnow())
