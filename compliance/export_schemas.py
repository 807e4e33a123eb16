"""The export format: one category per file, each with an explicit marshmallow schema.

A schema lists exactly the fields that leave the platform (Indico's GDPR export pattern);
dumping through it drops anything a provider adds beyond them, and the snapshot tests in
`tests/snapshots/gdpr_export/` pin every field name and the file layout. Change a schema only
together with `SCHEMA_VERSION` and the snapshots.

Other people's data is masked: actors are reduced to their kind (`tenant`, `system`,
`data_subject`), webhook endpoints to their host, invoice sellers' contact persons left out.
"""

from __future__ import annotations

from dataclasses import dataclass

import marshmallow as ma

SCHEMA_VERSION = 2  # 2: payments carry kind, credit note, reference, note, received_at
FORMAT = "abowerk.gdpr-export"


class _Strict(ma.Schema):
    class Meta:
        unknown = ma.RAISE


class ProfileExport(_Strict):
    customer_id = ma.fields.String(required=True)
    livemode = ma.fields.Boolean(required=True)
    email = ma.fields.String(required=True)
    name = ma.fields.String(required=True)
    is_business = ma.fields.Boolean(required=True)
    locale = ma.fields.String(required=True)
    external_ref = ma.fields.String(required=True, allow_none=True)
    metadata = ma.fields.Dict(required=True, keys=ma.fields.String())
    created_at = ma.fields.DateTime(required=True)
    updated_at = ma.fields.DateTime(required=True)
    erased = ma.fields.Boolean(required=True)


class AddressExport(_Strict):
    use = ma.fields.String(required=True, validate=ma.validate.OneOf(["billing"]))
    line1 = ma.fields.String(required=True, allow_none=True)
    line2 = ma.fields.String(required=True, allow_none=True)
    postal_code = ma.fields.String(required=True, allow_none=True)
    city = ma.fields.String(required=True, allow_none=True)
    state = ma.fields.String(required=True, allow_none=True)
    country = ma.fields.String(required=True)


class VatIdCheckExport(_Strict):
    vat_id = ma.fields.String(required=True)
    method = ma.fields.String(required=True, validate=ma.validate.OneOf(["syntax", "vies"]))
    result = ma.fields.String(
        required=True, validate=ma.validate.OneOf(["valid", "invalid", "unavailable"])
    )
    checked_at = ma.fields.DateTime(required=True)
    consultation_number = ma.fields.String(required=True, allow_none=True)


class SubscriptionHistoryExport(_Strict):
    seq = ma.fields.Integer(required=True)
    event = ma.fields.String(required=True)
    occurred_at = ma.fields.DateTime(required=True)
    actor = ma.fields.String(
        required=True, validate=ma.validate.OneOf(["tenant", "system", "data_subject"])
    )
    old_status = ma.fields.String(required=True, allow_none=True)
    new_status = ma.fields.String(required=True)
    old_price_id = ma.fields.String(required=True, allow_none=True)
    new_price_id = ma.fields.String(required=True)
    old_quantity = ma.fields.Integer(required=True, allow_none=True)
    new_quantity = ma.fields.Integer(required=True)
    currency = ma.fields.String(required=True)
    mrr_before = ma.fields.Integer(required=True)
    mrr_after = ma.fields.Integer(required=True)


class SubscriptionExport(_Strict):
    subscription_id = ma.fields.String(required=True)
    status = ma.fields.String(required=True)
    product = ma.fields.String(required=True)
    plan = ma.fields.String(required=True)
    price_id = ma.fields.String(required=True)
    unit_amount = ma.fields.Integer(required=True)
    currency = ma.fields.String(required=True)
    interval = ma.fields.String(required=True)
    quantity = ma.fields.Integer(required=True)
    started_at = ma.fields.DateTime(required=True)
    trial_end_at = ma.fields.DateTime(required=True, allow_none=True)
    current_period_start_at = ma.fields.DateTime(required=True, allow_none=True)
    current_period_end_at = ma.fields.DateTime(required=True, allow_none=True)
    canceled_at = ma.fields.DateTime(required=True, allow_none=True)
    ended_at = ma.fields.DateTime(required=True, allow_none=True)
    metadata = ma.fields.Dict(required=True, keys=ma.fields.String())
    history = ma.fields.List(ma.fields.Nested(SubscriptionHistoryExport), required=True)


class InvoiceBuyerExport(_Strict):
    name = ma.fields.String(required=True)
    address = ma.fields.Nested(AddressExport, required=True, allow_none=True)
    vat_id = ma.fields.String(required=True, allow_none=True)


class InvoiceExport(_Strict):
    """An invoice, credit note or draft; a draft has no number, dates, totals or buyer yet
    (they are fixed when it is finalized)."""

    invoice_id = ma.fields.String(required=True)
    kind = ma.fields.String(required=True)  # invoice, credit_note, small_amount
    number = ma.fields.String(required=True, allow_none=True)
    status = ma.fields.String(required=True)
    issue_date = ma.fields.Date(required=True, allow_none=True)
    currency = ma.fields.String(required=True)
    net_amount = ma.fields.Integer(required=True, allow_none=True)
    tax_amount = ma.fields.Integer(required=True, allow_none=True)
    gross_amount = ma.fields.Integer(required=True, allow_none=True)
    seller_name = ma.fields.String(required=True)
    buyer = ma.fields.Nested(InvoiceBuyerExport, required=True, allow_none=True)
    restricted = ma.fields.Boolean(required=True)
    retention_ends_on = ma.fields.Date(required=True, allow_none=True)
    pdf_file = ma.fields.String(required=True, allow_none=True)  # path inside the ZIP
    xml_file = ma.fields.String(required=True, allow_none=True)
    sha256 = ma.fields.String(required=True, allow_none=True)


class PaymentExport(_Strict):
    payment_id = ma.fields.String(required=True)
    provider = ma.fields.String(required=True)
    kind = ma.fields.String(required=True)  # "payment" (money in) or "refund" (money out)
    status = ma.fields.String(required=True)
    amount = ma.fields.Integer(required=True)
    currency = ma.fields.String(required=True)
    method = ma.fields.String(required=True, allow_none=True)  # "card •••• 4242", "sepa_debit"
    invoice_id = ma.fields.String(required=True, allow_none=True)
    credit_note_id = ma.fields.String(required=True, allow_none=True)  # refunds
    reference = ma.fields.String(required=True, allow_none=True)  # bank or Stripe reference
    note = ma.fields.String(required=True, allow_none=True)  # the transfer's free text
    received_at = ma.fields.DateTime(required=True, allow_none=True)
    created_at = ma.fields.DateTime(required=True)


class ConsentExport(_Strict):
    purpose = ma.fields.String(required=True)
    text_version = ma.fields.String(required=True, allow_none=True)
    given_at = ma.fields.DateTime(required=True)
    withdrawn_at = ma.fields.DateTime(required=True, allow_none=True)
    source = ma.fields.String(required=True)


class WebhookDeliveryExport(_Strict):
    event_id = ma.fields.String(required=True)
    event_type = ma.fields.String(required=True)
    event_created_at = ma.fields.DateTime(required=True)
    endpoint_host = ma.fields.String(required=True)  # the tenant's receiver, host only
    status = ma.fields.String(required=True)
    attempts = ma.fields.Integer(required=True)
    last_attempt_at = ma.fields.DateTime(required=True, allow_none=True)
    data = ma.fields.Dict(required=True)  # the payload as sent


class AuditEntryExport(_Strict):
    at = ma.fields.DateTime(required=True)
    action = ma.fields.String(required=True)
    actor = ma.fields.String(
        required=True, validate=ma.validate.OneOf(["tenant", "system", "data_subject"])
    )
    subject_type = ma.fields.String(required=True)
    subject_id = ma.fields.String(required=True, allow_none=True)
    details = ma.fields.Dict(required=True)
    redacted = ma.fields.Boolean(required=True)


class DataSubjectRequestExport(_Strict):
    request_id = ma.fields.String(required=True)
    kind = ma.fields.String(required=True)
    state = ma.fields.String(required=True)
    received_at = ma.fields.DateTime(required=True)
    due_at = ma.fields.DateTime(required=True)
    extension_months = ma.fields.Integer(required=True)
    extension_reason = ma.fields.String(required=True, allow_none=True)
    verification_method = ma.fields.String(required=True, allow_none=True)
    verified_at = ma.fields.DateTime(required=True, allow_none=True)
    completed_at = ma.fields.DateTime(required=True, allow_none=True)
    rejected_at = ma.fields.DateTime(required=True, allow_none=True)
    rejection_reason = ma.fields.String(required=True, allow_none=True)


@dataclass(frozen=True)
class Category:
    name: str
    file: str
    schema: type[ma.Schema]
    title: str


CATEGORIES: tuple[Category, ...] = (
    Category("profile", "profile.json", ProfileExport, "Customer profile"),
    Category("addresses", "addresses.json", AddressExport, "Addresses"),
    Category("vat_id_checks", "vat_id_checks.json", VatIdCheckExport, "VAT ID checks"),
    Category(
        "subscriptions", "subscriptions.json", SubscriptionExport, "Subscriptions and history"
    ),
    Category("invoices", "invoices.json", InvoiceExport, "Invoices and credit notes"),
    Category("payments", "payments.json", PaymentExport, "Payments"),
    Category("consents", "consents.json", ConsentExport, "Consents"),
    Category(
        "webhook_deliveries",
        "webhook_deliveries.json",
        WebhookDeliveryExport,
        "Webhook deliveries that carried the person's data",
    ),
    Category("audit_entries", "audit_entries.json", AuditEntryExport, "Audit entries"),
    Category(
        "data_subject_requests",
        "data_subject_requests.json",
        DataSubjectRequestExport,
        "Data subject requests",
    ),
)
CATEGORY_BY_NAME = {c.name: c for c in CATEGORIES}


class ManifestCategory(_Strict):
    name = ma.fields.String(required=True)
    title = ma.fields.String(required=True)
    file = ma.fields.String(required=True)
    records = ma.fields.Integer(required=True)
    purposes = ma.fields.List(ma.fields.String(), required=True)
    retention = ma.fields.List(ma.fields.String(), required=True)


class ManifestFile(_Strict):
    path = ma.fields.String(required=True)
    sha256 = ma.fields.String(required=True)
    bytes = ma.fields.Integer(required=True)


class Manifest(_Strict):
    format = ma.fields.String(required=True, validate=ma.validate.Equal(FORMAT))
    schema_version = ma.fields.Integer(required=True)
    generated_at = ma.fields.DateTime(required=True)
    request_id = ma.fields.String(required=True)
    request_kind = ma.fields.String(
        required=True, validate=ma.validate.OneOf(["access", "portability"])
    )
    controller = ma.fields.String(required=True)
    processor = ma.fields.String(required=True)
    subject = ma.fields.Dict(required=True)
    categories = ma.fields.List(ma.fields.Nested(ManifestCategory), required=True)
    files = ma.fields.List(ma.fields.Nested(ManifestFile), required=True)
