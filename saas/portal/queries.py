"""Reads for the portal pages, always for one customer (the session's).

The next invoice is an estimate of what the next billing run will charge: the recurring
charge of the coming period at the terms that will then apply (a scheduled change included),
with VAT decided by the tax engine exactly as finalization will decide it, from the seller
profile and the customer's facts as they are now. Proration lines already recorded are added.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.orm import Session

from billing.invoices.models import CREDIT_NOTE, DRAFT, INVOICE_KINDS, Invoice
from billing.invoices.snapshots import CustomerData, LineData, decide_lines
from billing.payments.models import PaymentCustomer
from billing.sellers.models import SellerProfile
from billing.sellers.services import find_seller_profile, tax_counters, tax_policy, tax_seller
from compliance.models import GdprExport, GdprRequest
from compliance.queries import restricted_documents
from saas.catalog.currencies import EXPONENTS, to_minor
from saas.catalog.models import Plan, Price, Product
from saas.customers.models import Customer
from saas.subscriptions.models import Subscription, SubscriptionCharge
from tax.errors import TaxError

_CLOSED = ("canceled", "incomplete_expired")
_RESTRICTED = restricted_documents("invoice")


def subscriptions(session: Session, customer_id: str) -> Sequence[Subscription]:
    return session.scalars(
        sa.select(Subscription)
        .where(Subscription.customer_id == customer_id, Subscription.status.not_in(_CLOSED))
        .order_by(Subscription.created_at.desc())
    ).all()


def customer_subscription(session: Session, customer_id: str, subscription_id: str) -> Subscription:
    """The customer's subscription, or 404 (another customer's id is simply not found)."""
    from saas.subscriptions.errors import SubscriptionNotFoundError

    sub = session.scalars(
        sa.select(Subscription).where(
            Subscription.id == subscription_id, Subscription.customer_id == customer_id
        )
    ).first()
    if sub is None:
        raise SubscriptionNotFoundError(f"no subscription {subscription_id}")
    return sub


@dataclass(frozen=True)
class PriceOption:
    price: Price
    plan: Plan
    product: Product


def price_options(session: Session, currency: str) -> list[PriceOption]:
    """Active prices in the subscription's currency (a subscription keeps its currency)."""
    rows = session.execute(
        sa.select(Price, Plan, Product)
        .join(Plan, sa.and_(Plan.tenant_id == Price.tenant_id, Plan.id == Price.plan_id))
        .join(Product, sa.and_(Product.tenant_id == Plan.tenant_id, Product.id == Plan.product_id))
        .where(
            Price.currency == currency,
            Price.status == "active",
            Plan.status == "active",
            Product.status == "active",
        )
        .order_by(Price.unit_amount, Price.id)
    ).all()
    return [PriceOption(price, plan, product) for price, plan, product in rows]


def plan_name(session: Session, price_id: str) -> str:
    row = session.execute(
        sa.select(Plan.name, Price.nickname)
        .join(Price, sa.and_(Price.tenant_id == Plan.tenant_id, Price.plan_id == Plan.id))
        .where(Price.id == price_id)
    ).first()
    if row is None:
        return price_id
    return str(row.nickname or row.name)


def recurring_amount(price: Price, quantity: int) -> int:
    return price.unit_amount * quantity if price.per_seat else price.unit_amount


@dataclass(frozen=True)
class NextInvoice:
    on: datetime
    currency: str
    net: int
    vat: int | None  # None: the tax engine could not decide (no seller profile, missing facts)
    gross: int | None
    rate: Decimal | None
    treatment: str | None


def _customer_data(customer: Customer) -> CustomerData:
    return CustomerData(
        name=customer.name,
        country=customer.country,
        line1=customer.address_line1,
        line2=customer.address_line2,
        postal_code=customer.postal_code,
        city=customer.city,
        is_business=customer.is_business,
        vat_id=customer.vat_id,
        vat_id_status=customer.vat_id_status,
    )


@dataclass(frozen=True)
class Taxed:
    net: int
    vat: int
    gross: int
    rate: Decimal
    treatment: str


def with_vat(
    session: Session,
    customer: Customer,
    *,
    livemode: bool,
    currency: str,
    net: int,
    quantity: int,
    unit_amount: int,
    on: date,
) -> Taxed | None:
    """VAT on `net` as finalization would decide it today; None when it cannot be decided
    (no seller profile, a credit, missing customer facts)."""
    profile: SellerProfile | None = find_seller_profile(session, livemode=livemode)
    if profile is None or net < 0:
        return None
    line = LineData("estimate", Decimal(quantity), unit_amount, net)
    try:
        (decision,) = decide_lines(
            tax_seller(profile),
            tax_counters(profile),
            _customer_data(customer).facts(),
            [line],
            supplied_on=on,
            currency=currency,
            eur_rate=None,
            policy=tax_policy(profile),
        )
    except TaxError:
        return None
    vat = to_minor(decision.vat.scaleb(EXPONENTS.get(currency, 2)))
    return Taxed(net, vat, net + vat, decision.rate, decision.treatment.value)


def next_invoice(session: Session, customer: Customer, sub: Subscription) -> NextInvoice | None:
    if sub.cancel_at_period_end or sub.status in _CLOSED or sub.status == "paused":
        return None
    on = sub.current_period_end_at or sub.trial_end_at
    if on is None:
        return None
    price = session.get(Price, (sub.tenant_id, sub.scheduled_price_id or sub.price_id))
    if price is None:
        return None
    quantity = sub.scheduled_quantity or sub.quantity
    uninvoiced = session.scalars(
        sa.select(sa.func.coalesce(sa.func.sum(SubscriptionCharge.amount), 0)).where(
            SubscriptionCharge.subscription_id == sub.id,
            SubscriptionCharge.invoiced_at.is_(None),
            SubscriptionCharge.kind.in_(("proration_credit", "proration_charge")),
        )
    ).one()
    net = recurring_amount(price, quantity) + int(uninvoiced)
    taxed = with_vat(
        session,
        customer,
        livemode=sub.livemode,
        currency=sub.currency,
        net=net,
        quantity=quantity,
        unit_amount=price.unit_amount,
        on=on.date(),
    )
    if taxed is None:
        return NextInvoice(on, sub.currency, net, None, None, None, None)
    return NextInvoice(on, sub.currency, net, taxed.vat, taxed.gross, taxed.rate, taxed.treatment)


def documents(session: Session, customer_id: str) -> Sequence[Invoice]:
    """Finalized invoices and credit notes of the customer, newest first."""
    return session.scalars(
        sa.select(Invoice)
        .where(
            Invoice.customer_id == customer_id,
            Invoice.status != DRAFT,
            Invoice.kind.in_((*INVOICE_KINDS, CREDIT_NOTE)),
            Invoice.id.not_in(_RESTRICTED),
        )
        .order_by(Invoice.id.desc())
        .limit(200)
    ).all()


def customer_document(session: Session, customer_id: str, invoice_id: str) -> Invoice | None:
    return session.scalars(
        sa.select(Invoice).where(
            Invoice.id == invoice_id,
            Invoice.customer_id == customer_id,
            Invoice.status != DRAFT,
            Invoice.id.not_in(_RESTRICTED),
        )
    ).first()


def privacy_requests(session: Session, customer_id: str) -> Sequence[GdprRequest]:
    return session.scalars(
        sa.select(GdprRequest)
        .where(GdprRequest.customer_id == customer_id)
        .order_by(GdprRequest.id.desc())
        .limit(50)
    ).all()


def live_exports(session: Session, customer_id: str, now: datetime) -> dict[str, GdprExport]:
    """Exports still kept, by request id."""
    rows = session.scalars(
        sa.select(GdprExport).where(
            GdprExport.customer_id == customer_id,
            GdprExport.deleted_at.is_(None),
            GdprExport.expires_at > now,
        )
    ).all()
    return {row.request_id: row for row in rows}


def card_on_file(session: Session, customer_id: str) -> PaymentCustomer | None:
    """The customer's default card with the seller's Stripe account, if one is set up."""
    return session.scalars(
        sa.select(PaymentCustomer).where(
            PaymentCustomer.customer_id == customer_id,
            PaymentCustomer.default_payment_method_id.is_not(None),
        )
    ).first()
