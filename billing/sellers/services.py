"""Seller profile use cases, and the profile as the tax engine and the documents see it.

Callers pass the session (scoped to a tenant and, in a request, a mode) and ``now``.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from billing.documents.model import Address, BankAccount, Contact, SellerParty
from billing.sellers.models import SellerProfile
from saas.kernel.errors import ConflictError, NotFoundError
from saas.kernel.ids import new_id
from saas.kernel.tenancy import current_livemode
from tax.model import Counters, FoundingYearCrossing, TaxPolicy
from tax.model import SellerProfile as TaxSellerProfile

_COUNTER_FIELDS = (
    "turnover_previous_year",
    "turnover_current_year",
    "forecast_current_year",
    "eu_b2c_previous_year",
    "eu_b2c_current_year",
    "union_turnover_previous_year",
    "union_turnover_current_year",
)
_POLICY_FIELDS = (
    "founding_year_crossing",
    "exempt_at_exact_limit",
    "kleinunternehmer_reverse_charge_wording",
)
_PLAIN_FIELDS = (
    "legal_name",
    "tax_number",
    "vat_id",
    "legal_registration_id",
    "kleinunternehmer",
    "oss_registered",
    "destination_option",
    "destination_option_since",
    "founded_on",
    "established_in_one_member_state",
    "eu_sme_countries",
    "eu_sme_id",
    "invoice_language",
    "logo",
    "accent_color",
    "payment_terms_days",
    "accepted_currencies",
)


class SellerProfileNotFoundError(NotFoundError):
    code = "seller_profile_not_found"
    title = "No seller profile"


class SellerProfileRequiredError(ConflictError):
    code = "seller_profile_required"
    title = "Set up the seller profile first"


def find_seller_profile(session: Session, *, livemode: bool | None = None) -> SellerProfile | None:
    """The profile of the session's tenant in ``livemode`` (default: the session's mode)."""
    mode = current_livemode(session) if livemode is None else livemode
    stmt = sa.select(SellerProfile)
    if mode is not None:
        stmt = stmt.where(SellerProfile.livemode == mode)
    return session.scalars(stmt).first()


def get_seller_profile(session: Session) -> SellerProfile:
    profile = find_seller_profile(session)
    if profile is None:
        raise SellerProfileNotFoundError("no seller profile yet: PUT /v1/seller_profile")
    return profile


def require_seller_profile(session: Session, *, livemode: bool) -> SellerProfile:
    """The profile invoicing needs (409 ``seller_profile_required`` without one)."""
    profile = find_seller_profile(session, livemode=livemode)
    if profile is None:
        raise SellerProfileRequiredError(
            "invoices need the seller's name, address and tax numbers: PUT /v1/seller_profile"
        )
    return profile


def put_seller_profile(session: Session, data: dict[str, Any], *, now: datetime) -> SellerProfile:
    """Create or replace the profile with validated input (``SellerProfileIn``)."""
    profile = find_seller_profile(session)
    if profile is None:
        profile = SellerProfile(id=new_id("slr"), created_at=now)
        session.add(profile)
    for name in _PLAIN_FIELDS:
        setattr(profile, name, data[name])
    address = data["address"]
    profile.address_line1 = address["line1"]
    profile.address_line2 = address.get("line2")
    profile.postal_code = address["postal_code"]
    profile.city = address["city"]
    profile.country = address["country"]
    contact = data.get("contact") or {}
    profile.contact_name = contact.get("name")
    profile.contact_phone = contact.get("phone")
    profile.contact_email = contact.get("email")
    bank = data.get("bank") or {}
    profile.bank_iban = bank.get("iban")
    profile.bank_bic = bank.get("bic")
    profile.bank_account_holder = bank.get("account_holder")
    for name in _COUNTER_FIELDS:
        setattr(profile, name, data["counters"][name])
    for name in _POLICY_FIELDS:
        setattr(profile, name, data["tax_policy"][name])
    numbering = data["numbering"]
    profile.invoice_number_pattern = numbering["invoice_pattern"]
    profile.credit_note_number_pattern = numbering["credit_note_pattern"]
    profile.credit_notes_share_invoice_series = numbering["credit_notes_share_invoice_series"]
    profile.updated_at = now
    session.flush()
    return profile


# --- the profile as the tax engine and the documents see it ---------------------------------


def _eur(cents: int | None) -> Decimal | None:
    return None if cents is None else Decimal(cents).scaleb(-2)


def tax_seller(profile: SellerProfile) -> TaxSellerProfile:
    """``tax.model.SellerProfile`` of the profile."""
    return TaxSellerProfile(
        country=profile.country,
        vat_id=profile.vat_id,
        tax_number=profile.tax_number,
        kleinunternehmer=profile.kleinunternehmer,
        oss_registered=profile.oss_registered,
        destination_option=profile.destination_option,
        destination_option_since=profile.destination_option_since,
        founded_on=profile.founded_on,
        eu_sme_countries=frozenset(profile.eu_sme_countries or ()),
        eu_sme_id=profile.eu_sme_id,
        established_in_one_member_state=profile.established_in_one_member_state,
    )


def tax_counters(profile: SellerProfile) -> Counters:
    """``tax.model.Counters`` from the entered EUR cents."""
    zero = Decimal(0)
    return Counters(
        turnover_previous_year=_eur(profile.turnover_previous_year),
        turnover_current_year=_eur(profile.turnover_current_year) or zero,
        forecast_current_year=_eur(profile.forecast_current_year),
        eu_b2c_previous_year=_eur(profile.eu_b2c_previous_year) or zero,
        eu_b2c_current_year=_eur(profile.eu_b2c_current_year) or zero,
        union_turnover_previous_year=_eur(profile.union_turnover_previous_year) or zero,
        union_turnover_current_year=_eur(profile.union_turnover_current_year) or zero,
    )


def tax_policy(profile: SellerProfile) -> TaxPolicy:
    """``tax.model.TaxPolicy`` of the tenant."""
    return TaxPolicy(
        founding_year_crossing=FoundingYearCrossing(profile.founding_year_crossing),
        exempt_at_exact_limit=profile.exempt_at_exact_limit,
        kleinunternehmer_reverse_charge_wording=profile.kleinunternehmer_reverse_charge_wording,
    )


def seller_party(profile: SellerProfile) -> SellerParty:
    """The seller as an invoice snapshot shows it, as the profile is now."""
    bank = None
    if profile.bank_iban and profile.bank_account_holder:
        bank = BankAccount(profile.bank_iban, profile.bank_account_holder, profile.bank_bic)
    contact = None
    if profile.contact_name and profile.contact_phone and profile.contact_email:
        contact = Contact(profile.contact_name, profile.contact_phone, profile.contact_email)
    return SellerParty(
        legal_name=profile.legal_name,
        address=Address(
            profile.country,
            profile.address_line1,
            profile.address_line2,
            profile.postal_code,
            profile.city,
        ),
        tax_number=profile.tax_number,
        vat_id=profile.vat_id,
        kleinunternehmer=profile.kleinunternehmer,
        bank=bank,
        logo=profile.logo,
        accent_color=profile.accent_color,
        contact=contact,
        legal_registration_id=profile.legal_registration_id,
        eu_sme_id=profile.eu_sme_id,
    )
