"""Staff accounts (`saas.dashboard`): the e-mail addresses of the tenant's own staff.

Like the seller profile's contact person, these are personal data of the tenant's staff, not
of its customers: the tenant is their controller, abowerk its processor. They are outside
customer requests (no exporter, no eraser); an owner removes an account, and all accounts go
when the tenant's account is closed. Registered so that the classification test knows
somebody answers for them.
"""

from __future__ import annotations

from compliance.registry import SUBJECT_TENANT_CONTACT, Provider, Registry, columns

PROVIDER = Provider(
    name="staff_accounts",
    covers=columns("staff_accounts", ["email"]),
    purpose="signing the tenant's staff in to the dashboard",
    retention="while the staff account exists",
    subject_kind=SUBJECT_TENANT_CONTACT,
)


def register(target: Registry) -> None:
    target.register(PROVIDER)
