from __future__ import annotations

from typing import Any

import marshmallow as ma
from flask import request
from flask.views import MethodView

from saas.auth.middleware import requires
from saas.catalog import queries, services
from saas.catalog.models import STATUSES, Plan, Price, Product
from saas.catalog.schemas import (
    PlanCreateSchema,
    PlanListSchema,
    PlanSchema,
    PlanUpdateSchema,
    PriceCreateSchema,
    PriceListSchema,
    PriceSchema,
    PriceUpdateSchema,
    ProductCreateSchema,
    ProductListSchema,
    ProductSchema,
    ProductUpdateSchema,
)
from saas.extensions import session
from saas.http.api import Blueprint
from saas.kernel.clock import utcnow
from saas.kernel.pagination import ListArgs, list_envelope

blp = Blueprint(
    "catalog", __name__, url_prefix="/v1", description="Catalog: products, plans, prices"
)


class _StatusArgs(ListArgs):
    status = ma.fields.String(load_default=None, validate=ma.validate.OneOf(STATUSES))


class PlanListArgs(_StatusArgs):
    product_id = ma.fields.String(load_default=None, validate=ma.validate.Length(max=40))


class PriceListArgs(_StatusArgs):
    plan_id = ma.fields.String(load_default=None, validate=ma.validate.Length(max=40))
    lineage_id = ma.fields.String(
        load_default=None,
        validate=ma.validate.Length(max=40),
        metadata={"description": "All versions of one price."},
    )


@blp.route("/products")
class ProductCollection(MethodView):
    @blp.arguments(_StatusArgs, location="query")
    @blp.response(200, ProductListSchema)
    @blp.problems(400, 401, 403, 422, 429)
    @requires("catalog", "read")
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """List products, newest first."""
        rows, has_more = queries.list_products(
            session(),
            limit=args["limit"],
            starting_after=args["starting_after"],
            status=args["status"],
        )
        return list_envelope(request.path, rows, has_more)

    @blp.arguments(ProductCreateSchema)
    @blp.response(201, ProductSchema)
    @blp.problems(400, 401, 403, 409, 413, 422, 429)
    @requires("catalog", "write")
    def post(self, data: dict[str, Any]) -> Product:
        """Create a product."""
        return services.create_product(session(), data, now=utcnow())


@blp.route("/products/<product_id>")
class ProductItem(MethodView):
    @blp.response(200, ProductSchema)
    @blp.problems(401, 403, 404, 429)
    @requires("catalog", "read")
    def get(self, product_id: str) -> Product:
        """Get a product."""
        return services.get_product(session(), product_id)

    @blp.arguments(ProductUpdateSchema)
    @blp.response(200, ProductSchema)
    @blp.problems(400, 401, 403, 404, 409, 413, 422, 429)
    @requires("catalog", "write")
    def patch(self, data: dict[str, Any], product_id: str) -> Product:
        """Update a product; `status: archived` archives it (no new plans, no new subscribers)."""
        return services.update_product(session(), product_id, data, now=utcnow())


@blp.route("/plans")
class PlanCollection(MethodView):
    @blp.arguments(PlanListArgs, location="query")
    @blp.response(200, PlanListSchema)
    @blp.problems(400, 401, 403, 422, 429)
    @requires("catalog", "read")
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """List plans, newest first."""
        rows, has_more = queries.list_plans(
            session(),
            limit=args["limit"],
            starting_after=args["starting_after"],
            product_id=args["product_id"],
            status=args["status"],
        )
        return list_envelope(request.path, rows, has_more)

    @blp.arguments(PlanCreateSchema)
    @blp.response(201, PlanSchema)
    @blp.problems(400, 401, 403, 404, 409, 413, 422, 429)
    @requires("catalog", "write")
    def post(self, data: dict[str, Any]) -> Plan:
        """Create a plan (a tier such as Starter, Pro, Business) of an active product."""
        return services.create_plan(session(), data, now=utcnow())


@blp.route("/plans/<plan_id>")
class PlanItem(MethodView):
    @blp.response(200, PlanSchema)
    @blp.problems(401, 403, 404, 429)
    @requires("catalog", "read")
    def get(self, plan_id: str) -> Plan:
        """Get a plan."""
        return services.get_plan(session(), plan_id)

    @blp.arguments(PlanUpdateSchema)
    @blp.response(200, PlanSchema)
    @blp.problems(400, 401, 403, 404, 409, 413, 422, 429)
    @requires("catalog", "write")
    def patch(self, data: dict[str, Any], plan_id: str) -> Plan:
        """Update a plan; trial settings apply to subscriptions created afterwards."""
        return services.update_plan(session(), plan_id, data, now=utcnow())


@blp.route("/prices")
class PriceCollection(MethodView):
    @blp.arguments(PriceListArgs, location="query")
    @blp.response(200, PriceListSchema)
    @blp.problems(400, 401, 403, 422, 429)
    @requires("catalog", "read")
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """List prices, newest first."""
        rows, has_more = queries.list_prices(
            session(),
            limit=args["limit"],
            starting_after=args["starting_after"],
            plan_id=args["plan_id"],
            lineage_id=args["lineage_id"],
            status=args["status"],
        )
        return list_envelope(request.path, rows, has_more)

    @blp.arguments(PriceCreateSchema)
    @blp.response(201, PriceSchema)
    @blp.problems(400, 401, 403, 404, 409, 413, 422, 429)
    @requires("catalog", "write")
    def post(self, data: dict[str, Any]) -> Price:
        """Create a price of an active plan: integer minor units per interval."""
        return services.create_price(session(), data, now=utcnow())


@blp.route("/prices/<price_id>")
class PriceItem(MethodView):
    @blp.response(200, PriceSchema)
    @blp.problems(401, 403, 404, 429)
    @requires("catalog", "read")
    def get(self, price_id: str) -> Price:
        """Get a price."""
        return services.get_price(session(), price_id)

    @blp.arguments(PriceUpdateSchema)
    @blp.response(200, PriceSchema)
    @blp.problems(400, 401, 403, 404, 409, 413, 422, 429)
    @requires("catalog", "write")
    def patch(self, data: dict[str, Any], price_id: str) -> Price:
        """Update a price. A new `unit_amount` on a price that has subscribers does not change
        it: the response is a new version (new id, `version` + 1, `previous_price_id` set) and
        the old price is archived; its subscribers keep it until they are changed."""
        return services.update_price(session(), price_id, data, now=utcnow())
