"""Seller profiles (`billing.sellers`): the tenant's own contact person and bank account.

These are personal data of the tenant's staff, not of its customers: the tenant is their
controller and abowerk its processor under the main contract. They are outside the customer
requests handled here (no exporter, no eraser); they are corrected by the tenant through the
seller profile API and deleted when the tenant's account is closed. Registered so that the
classification test knows somebody answers for them.
"""

from __future__ import annotations

from compliance.registry import SUBJECT_TENANT_CONTACT, Provider, Registry, columns

PROVIDER = Provider(
    name="seller_profiles",
    covers=columns(
        "seller_profiles",
        [
            "legal_name",
            "contact_name",
            "contact_phone",
            "contact_email",
            "bank_iban",
            "bank_account_holder",
        ],
    ),
    purpose="the seller's details printed on its invoices (§ 14 Abs. 4 UStG)",
    retention="while the tenant's account exists; copies in issued invoices as those",
    subject_kind=SUBJECT_TENANT_CONTACT,
)


def register(target: Registry) -> None:
    target.register(PROVIDER)
