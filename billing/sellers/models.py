"""The seller profile table: one row per tenant and mode (test and live keep their own, so a
test key can never change the data printed on live invoices).

Finalized invoices copy what they need into their snapshot; changing the profile never
changes an issued invoice (``docs/invoicing.md``).
"""

from __future__ import annotations

from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from saas.kernel.db import Base, HasLivemode, TenantOwned, UTCDateTime

LANGUAGES = ("de", "en")
FOUNDING_YEAR_CROSSINGS = ("from_crossing_supply", "from_start_of_year", "forecast")
DEFAULT_INVOICE_PATTERN = "RE-{year}-{seq:05}"
DEFAULT_CREDIT_NOTE_PATTERN = "GS-{year}-{seq:05}"
DEFAULT_ACCENT_COLOR = "#1f4e79"
MAX_LOGO_BYTES = 128 * 1024  # a logo is copied into every invoice snapshot: keep it small

_PERSONAL = {"personal_data": True}


class SellerProfile(TenantOwned, HasLivemode, Base):
    """Amounts of the counters are EUR minor units (cents); ``None`` means unknown."""

    __tablename__ = "seller_profiles"
    __table_args__ = (
        sa.UniqueConstraint("tenant_id", "livemode"),
        sa.CheckConstraint("length(country) = 2", name="country"),
        sa.CheckConstraint(f"invoice_language IN {LANGUAGES!r}", name="invoice_language"),
        sa.CheckConstraint("payment_terms_days >= 0", name="payment_terms_days"),
        sa.CheckConstraint(
            f"founding_year_crossing IN {FOUNDING_YEAR_CROSSINGS!r}",
            name="founding_year_crossing",
        ),
    )

    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    # the issuer (§ 14 Abs. 4 Nr. 1, 2 UStG)
    legal_name: Mapped[str] = mapped_column(sa.String(200), info=_PERSONAL)
    address_line1: Mapped[str | None] = mapped_column(sa.String(200))
    address_line2: Mapped[str | None] = mapped_column(sa.String(200))
    postal_code: Mapped[str | None] = mapped_column(sa.String(20))
    city: Mapped[str | None] = mapped_column(sa.String(100))
    country: Mapped[str] = mapped_column(sa.String(2))
    tax_number: Mapped[str | None] = mapped_column(sa.String(32))  # Steuernummer
    vat_id: Mapped[str | None] = mapped_column(sa.String(32))  # USt-IdNr.
    legal_registration_id: Mapped[str | None] = mapped_column(sa.String(200))  # HRB ...
    contact_name: Mapped[str | None] = mapped_column(sa.String(200), info=_PERSONAL)
    contact_phone: Mapped[str | None] = mapped_column(sa.String(50), info=_PERSONAL)
    contact_email: Mapped[str | None] = mapped_column(sa.String(320), info=_PERSONAL)
    # the regime data of tax.model.SellerProfile
    kleinunternehmer: Mapped[bool] = mapped_column(sa.Boolean(), default=False)
    oss_registered: Mapped[bool] = mapped_column(sa.Boolean(), default=False)
    destination_option: Mapped[bool] = mapped_column(sa.Boolean(), default=False)
    destination_option_since: Mapped[date | None] = mapped_column(sa.Date())
    founded_on: Mapped[date | None] = mapped_column(sa.Date())
    established_in_one_member_state: Mapped[bool] = mapped_column(sa.Boolean(), default=True)
    eu_sme_countries: Mapped[list[str]] = mapped_column(sa.JSON(), default=list)
    eu_sme_id: Mapped[str | None] = mapped_column(sa.String(32))
    # tax.model.Counters, entered for now (the billing ledger will derive them), EUR cents
    turnover_previous_year: Mapped[int | None] = mapped_column(sa.BigInteger())
    turnover_current_year: Mapped[int] = mapped_column(sa.BigInteger(), default=0)
    forecast_current_year: Mapped[int | None] = mapped_column(sa.BigInteger())
    eu_b2c_previous_year: Mapped[int] = mapped_column(sa.BigInteger(), default=0)
    eu_b2c_current_year: Mapped[int] = mapped_column(sa.BigInteger(), default=0)
    union_turnover_previous_year: Mapped[int] = mapped_column(sa.BigInteger(), default=0)
    union_turnover_current_year: Mapped[int] = mapped_column(sa.BigInteger(), default=0)
    # tax.model.TaxPolicy: the tenant's (adviser's) choices where the law is unsettled
    founding_year_crossing: Mapped[str] = mapped_column(
        sa.String(32), default="from_crossing_supply"
    )
    exempt_at_exact_limit: Mapped[bool] = mapped_column(sa.Boolean(), default=True)
    kleinunternehmer_reverse_charge_wording: Mapped[bool] = mapped_column(
        sa.Boolean(), default=True
    )
    # where customers pay (EN 16931 BG-17)
    bank_iban: Mapped[str | None] = mapped_column(sa.String(34), info=_PERSONAL)
    bank_bic: Mapped[str | None] = mapped_column(sa.String(11))
    bank_account_holder: Mapped[str | None] = mapped_column(sa.String(200), info=_PERSONAL)
    # the documents
    invoice_language: Mapped[str] = mapped_column(sa.String(2), default="de")
    logo: Mapped[bytes | None] = mapped_column(sa.LargeBinary())
    accent_color: Mapped[str] = mapped_column(sa.String(7), default=DEFAULT_ACCENT_COLOR)
    payment_terms_days: Mapped[int] = mapped_column(sa.Integer(), default=14)
    invoice_number_pattern: Mapped[str] = mapped_column(
        sa.String(64), default=DEFAULT_INVOICE_PATTERN
    )
    credit_note_number_pattern: Mapped[str] = mapped_column(
        sa.String(64), default=DEFAULT_CREDIT_NOTE_PATTERN
    )
    credit_notes_share_invoice_series: Mapped[bool] = mapped_column(sa.Boolean(), default=False)
    accepted_currencies: Mapped[list[str]] = mapped_column(sa.JSON(), default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
