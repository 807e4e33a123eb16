"""Catalog use cases. Callers pass the session (already scoped to a tenant and mode) and `now`.

Price versioning (the rule "a price that has subscribers never changes"): a price is frozen
from the moment a subscription first uses it (`Price.first_subscribed_at`). Sending a new
`unit_amount` for a frozen price does not touch its row: a new price is created with the next
`version` of the same lineage, `previous_price_id` pointing back, and the old price is archived.
Existing subscriptions stay on the old price (grandfathered) until they are changed to the new
one; new subscriptions can only pick the new one. Nickname, metadata and status are labels,
not terms, and change in place. Currency, interval and per-seat never change at all.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from saas.catalog.errors import (
    PlanArchivedError,
    PlanNotFoundError,
    PriceArchivedError,
    PriceNotFoundError,
    ProductArchivedError,
    ProductNotFoundError,
)
from saas.catalog.models import Plan, Price, Product
from saas.kernel.errors import ConflictError
from saas.kernel.ids import new_id

ACTIVE = "active"
ARCHIVED = "archived"


# --- products -----------------------------------------------------------------------------


def get_product(session: Session, product_id: str) -> Product:
    product = session.scalars(sa.select(Product).where(Product.id == product_id)).first()
    if product is None:
        raise ProductNotFoundError(f"no product {product_id}")
    return product


def create_product(session: Session, data: dict[str, Any], *, now: datetime) -> Product:
    product = Product(
        id=new_id("prod"),
        name=data["name"],
        description=data.get("description"),
        status=ACTIVE,
        metadata_=data.get("metadata", {}),
        created_at=now,
        updated_at=now,
    )
    session.add(product)
    session.flush()
    return product


def update_product(
    session: Session, product_id: str, data: dict[str, Any], *, now: datetime
) -> Product:
    product = get_product(session, product_id)
    for field in ("name", "description", "status"):
        if field in data:
            setattr(product, field, data[field])
    if "metadata" in data:
        product.metadata_ = data["metadata"]
    product.updated_at = now
    session.flush()
    return product


# --- plans --------------------------------------------------------------------------------


def get_plan(session: Session, plan_id: str) -> Plan:
    plan = session.scalars(sa.select(Plan).where(Plan.id == plan_id)).first()
    if plan is None:
        raise PlanNotFoundError(f"no plan {plan_id}")
    return plan


def create_plan(session: Session, data: dict[str, Any], *, now: datetime) -> Plan:
    product = get_product(session, data["product_id"])
    if product.status != ACTIVE:
        raise ProductArchivedError(f"product {product.id} is archived: no new plans")
    plan = Plan(
        id=new_id("plan"),
        product_id=product.id,
        name=data["name"],
        description=data.get("description"),
        trial_days=data.get("trial_days", 0),
        trial_end_behavior=data.get("trial_end_behavior", "cancel"),
        tax_kind=data["tax_kind"],
        status=ACTIVE,
        metadata_=data.get("metadata", {}),
        created_at=now,
        updated_at=now,
    )
    session.add(plan)
    session.flush()
    return plan


def update_plan(session: Session, plan_id: str, data: dict[str, Any], *, now: datetime) -> Plan:
    """Trial settings apply to subscriptions created afterwards; running trials keep theirs."""
    plan = get_plan(session, plan_id)
    for field in ("name", "description", "trial_days", "trial_end_behavior", "tax_kind", "status"):
        if field in data:
            setattr(plan, field, data[field])
    if "metadata" in data:
        plan.metadata_ = data["metadata"]
    plan.updated_at = now
    session.flush()
    return plan


# --- prices -------------------------------------------------------------------------------


def get_price(session: Session, price_id: str) -> Price:
    price = session.scalars(sa.select(Price).where(Price.id == price_id)).first()
    if price is None:
        raise PriceNotFoundError(f"no price {price_id}")
    return price


def create_price(session: Session, data: dict[str, Any], *, now: datetime) -> Price:
    plan = get_plan(session, data["plan_id"])
    if plan.status != ACTIVE:
        raise PlanArchivedError(f"plan {plan.id} is archived: no new prices")
    price_id = new_id("price")
    price = Price(
        id=price_id,
        plan_id=plan.id,
        lineage_id=price_id,
        version=1,
        nickname=data.get("nickname"),
        currency=data["currency"],
        unit_amount=data["unit_amount"],
        billing_interval=data["interval"],
        per_seat=data.get("per_seat", False),
        status=ACTIVE,
        metadata_=data.get("metadata", {}),
        created_at=now,
        updated_at=now,
    )
    session.add(price)
    session.flush()
    return price


def update_price(session: Session, price_id: str, data: dict[str, Any], *, now: datetime) -> Price:
    """Change labels in place; a new amount on a frozen price returns a new version instead."""
    price = get_price(session, price_id)
    new_amount = data.get("unit_amount")
    if (
        new_amount is not None
        and new_amount != price.unit_amount
        and price.first_subscribed_at is not None
    ):
        return _create_price_version(session, price, data, now=now)
    for field in ("nickname", "unit_amount", "status"):
        if field in data:
            setattr(price, field, data[field])
    if "metadata" in data:
        price.metadata_ = data["metadata"]
    price.updated_at = now
    session.flush()
    return price


def _create_price_version(
    session: Session, old: Price, data: dict[str, Any], *, now: datetime
) -> Price:
    latest = session.scalar(
        sa.select(sa.func.max(Price.version)).where(Price.lineage_id == old.lineage_id)
    )
    new = Price(
        id=new_id("price"),
        plan_id=old.plan_id,
        lineage_id=old.lineage_id,
        version=(latest or old.version) + 1,
        previous_price_id=old.id,
        nickname=data.get("nickname", old.nickname),
        currency=old.currency,
        unit_amount=data["unit_amount"],
        billing_interval=old.billing_interval,
        per_seat=old.per_seat,
        status=data.get("status", ACTIVE),
        metadata_=data.get("metadata", old.metadata_),
        created_at=now,
        updated_at=now,
    )
    old.status = ARCHIVED
    old.updated_at = now
    session.add(new)
    try:
        session.flush()
    except sa.exc.IntegrityError as exc:  # another request created the same version first
        raise ConflictError(
            f"price {old.id} was versioned concurrently; fetch it and retry",
            code="price_version_conflict",
        ) from exc
    return new


def get_sellable_price(session: Session, price_id: str) -> tuple[Price, Plan, Product]:
    """The price with its plan and product, all three active: what a subscription may start on
    or change to. Archived anywhere up the chain is a 409 with the precise code."""
    price = get_price(session, price_id)
    plan = get_plan(session, price.plan_id)
    product = get_product(session, plan.product_id)
    if price.status != ACTIVE:
        raise PriceArchivedError(f"price {price.id} is archived", errors={"price_id": ["archived"]})
    if plan.status != ACTIVE:
        raise PlanArchivedError(f"plan {plan.id} is archived", errors={"price_id": ["archived"]})
    if product.status != ACTIVE:
        raise ProductArchivedError(
            f"product {product.id} is archived", errors={"price_id": ["archived"]}
        )
    return price, plan, product


def mark_price_subscribed(price: Price, *, now: datetime) -> None:
    """Called by subscriptions whenever one starts on, changes to or schedules a price: from
    now on the price's terms are frozen (see the module docstring)."""
    if price.first_subscribed_at is None:
        price.first_subscribed_at = now
