"""Catalog errors. Codes are public API: never rename one."""

from __future__ import annotations

from saas.kernel.errors import ConflictError, NotFoundError


class ProductNotFoundError(NotFoundError):
    code = "product_not_found"


class PlanNotFoundError(NotFoundError):
    code = "plan_not_found"


class PriceNotFoundError(NotFoundError):
    code = "price_not_found"


class ProductArchivedError(ConflictError):
    code = "product_archived"
    title = "The product is archived"


class PlanArchivedError(ConflictError):
    code = "plan_archived"
    title = "The plan is archived"


class PriceArchivedError(ConflictError):
    code = "price_archived"
    title = "The price is archived"
