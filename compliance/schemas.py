"""API input and output schemas of the GDPR endpoints (`saas.gdpr.api`)."""

from __future__ import annotations

import marshmallow as ma

from compliance.deadlines import MAX_EXTENSION_MONTHS, RequestKind, RequestState
from compliance.retention import MAX_YEARS

_KINDS = [k.value for k in RequestKind]
_STATES = [s.value for s in RequestState]


class GdprRequestCreateSchema(ma.Schema):
    customer_id = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=40))
    kind = ma.fields.String(required=True, validate=ma.validate.OneOf(_KINDS))
    received_at = ma.fields.AwareDateTime(
        load_default=None,
        metadata={
            "description": "When the request reached the tenant (the deadline runs from "
            "here); default now. Not in the future."
        },
    )


class GdprVerifyIdentitySchema(ma.Schema):
    method = ma.fields.String(
        required=True,
        validate=ma.validate.OneOf(["tenant_attestation"]),
        metadata={
            "description": "`tenant_attestation`: the tenant checked the person's identity "
            "and attests it. (`portal_session` is set by the customer portal only.)"
        },
    )
    note = ma.fields.String(
        required=True,
        validate=ma.validate.Length(min=3, max=1000),
        metadata={
            "description": "How the identity was checked, e.g. 'request came from the "
            "registered e-mail address'. Do not paste documents or personal data here."
        },
    )


class GdprExtendSchema(ma.Schema):
    months = ma.fields.Integer(
        required=True, validate=ma.validate.Range(min=1, max=MAX_EXTENSION_MONTHS)
    )
    reason = ma.fields.String(required=True, validate=ma.validate.Length(min=3, max=1000))


class GdprRejectSchema(ma.Schema):
    reason = ma.fields.String(required=True, validate=ma.validate.Length(min=3, max=1000))


class GdprLegalHoldSchema(ma.Schema):
    reason = ma.fields.String(required=True, validate=ma.validate.Length(min=3, max=1000))


class GdprNoBodySchema(ma.Schema):
    pass


class GdprRequestListArgs(ma.Schema):
    limit = ma.fields.Integer(load_default=10, validate=ma.validate.Range(min=1, max=100))
    starting_after = ma.fields.String(load_default=None, validate=ma.validate.Length(max=40))
    state = ma.fields.String(load_default=None, validate=ma.validate.OneOf(_STATES))
    kind = ma.fields.String(load_default=None, validate=ma.validate.OneOf(_KINDS))
    customer_id = ma.fields.String(load_default=None, validate=ma.validate.Length(max=40))
    overdue = ma.fields.Boolean(
        load_default=False,
        metadata={"description": "Only open requests whose deadline has passed."},
    )


class GdprRequestSchema(ma.Schema):
    id = ma.fields.String()
    object = ma.fields.Constant("gdpr_request")
    livemode = ma.fields.Boolean()
    customer_id = ma.fields.String()
    kind = ma.fields.String()
    state = ma.fields.String()
    received_at = ma.fields.DateTime()
    due_at = ma.fields.DateTime()
    overdue = ma.fields.Boolean()
    extension_months = ma.fields.Integer()
    extension_reason = ma.fields.String(allow_none=True)
    extended_at = ma.fields.DateTime(allow_none=True)
    identity_requested_at = ma.fields.DateTime(allow_none=True)
    verified_at = ma.fields.DateTime(allow_none=True)
    verified_by = ma.fields.String(allow_none=True)
    verification_method = ma.fields.String(allow_none=True)
    verification_note = ma.fields.String(allow_none=True)
    completed_at = ma.fields.DateTime(allow_none=True)
    rejected_at = ma.fields.DateTime(allow_none=True)
    rejection_reason = ma.fields.String(allow_none=True)
    outcome = ma.fields.Dict()
    created_by = ma.fields.String()
    created_at = ma.fields.DateTime()
    updated_at = ma.fields.DateTime()


class GdprRequestEventSchema(ma.Schema):
    """The request in `gdpr.request.*` webhooks: ids, states and dates, no free text."""

    id = ma.fields.String()
    object = ma.fields.Constant("gdpr_request")
    livemode = ma.fields.Boolean()
    customer_id = ma.fields.String()
    kind = ma.fields.String()
    state = ma.fields.String()
    received_at = ma.fields.DateTime()
    due_at = ma.fields.DateTime()
    extension_months = ma.fields.Integer()
    verification_method = ma.fields.String(allow_none=True)
    completed_at = ma.fields.DateTime(allow_none=True)
    rejected_at = ma.fields.DateTime(allow_none=True)


class GdprDownloadLinkSchema(ma.Schema):
    export_id = ma.fields.String()
    url = ma.fields.String(
        metadata={"description": "Single use, no API key needed: hand it to the person."}
    )
    expires_at = ma.fields.DateTime()


class GdprFulfilledRequestSchema(GdprRequestSchema):
    download = ma.fields.Nested(
        GdprDownloadLinkSchema,
        allow_none=True,
        metadata={"description": "Access and portability: the export's download link, once."},
    )


class GdprRequestListSchema(ma.Schema):
    object = ma.fields.Constant("list")
    url = ma.fields.String()
    data = ma.fields.List(ma.fields.Nested(GdprRequestSchema))
    has_more = ma.fields.Boolean()


class GdprRestrictionSchema(ma.Schema):
    id = ma.fields.String()
    object = ma.fields.Constant("gdpr_restriction")
    livemode = ma.fields.Boolean()
    customer_id = ma.fields.String()
    request_id = ma.fields.String(allow_none=True)
    scope = ma.fields.String()
    basis = ma.fields.String()
    document_type = ma.fields.String()
    document_id = ma.fields.String()
    document_class = ma.fields.String(allow_none=True)
    issued_on = ma.fields.Date(allow_none=True)
    retention_ends_on = ma.fields.Date(allow_none=True)
    legal_hold = ma.fields.Boolean()
    legal_hold_reason = ma.fields.String(allow_none=True)
    legal_hold_set_at = ma.fields.DateTime(allow_none=True)
    redacted_at = ma.fields.DateTime(allow_none=True)
    lifted_at = ma.fields.DateTime(allow_none=True)
    created_at = ma.fields.DateTime()


class GdprRestrictionListArgs(ma.Schema):
    limit = ma.fields.Integer(load_default=10, validate=ma.validate.Range(min=1, max=100))
    starting_after = ma.fields.String(load_default=None, validate=ma.validate.Length(max=40))
    customer_id = ma.fields.String(load_default=None, validate=ma.validate.Length(max=40))


class GdprRestrictionListSchema(ma.Schema):
    object = ma.fields.Constant("list")
    url = ma.fields.String()
    data = ma.fields.List(ma.fields.Nested(GdprRestrictionSchema))
    has_more = ma.fields.Boolean()


class GdprAuditEntrySchema(ma.Schema):
    id = ma.fields.String()
    object = ma.fields.Constant("audit_entry")
    livemode = ma.fields.Boolean()
    at = ma.fields.DateTime()
    actor = ma.fields.String()
    action = ma.fields.String()
    subject_type = ma.fields.String()
    subject_id = ma.fields.String(allow_none=True)
    details = ma.fields.Dict()
    redacted_at = ma.fields.DateTime(allow_none=True)


class GdprAuditEntryListArgs(ma.Schema):
    limit = ma.fields.Integer(load_default=10, validate=ma.validate.Range(min=1, max=100))
    starting_after = ma.fields.String(load_default=None, validate=ma.validate.Length(max=40))
    subject_id = ma.fields.String(load_default=None, validate=ma.validate.Length(max=40))


class GdprAuditEntryListSchema(ma.Schema):
    object = ma.fields.Constant("list")
    url = ma.fields.String()
    data = ma.fields.List(ma.fields.Nested(GdprAuditEntrySchema))
    has_more = ma.fields.Boolean()


_YEARS = ma.validate.Range(min=1, max=MAX_YEARS)


class GdprRetentionYearsSchema(ma.Schema):
    invoice = ma.fields.Integer(validate=_YEARS)
    credit_note = ma.fields.Integer(validate=_YEARS)
    oss_record = ma.fields.Integer(validate=_YEARS)


class GdprSettingsUpdateSchema(ma.Schema):
    retention_years = ma.fields.Nested(GdprRetentionYearsSchema)
    export_ttl_hours = ma.fields.Integer(validate=ma.validate.Range(min=1, max=24 * 30))
    due_soon_days = ma.fields.Integer(validate=ma.validate.Range(min=1, max=28))


class GdprSettingsSchema(ma.Schema):
    object = ma.fields.Constant("gdpr_settings")
    retention_years = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.Integer())
    statutory_retention_years = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.Integer())
    export_ttl_hours = ma.fields.Integer()
    due_soon_days = ma.fields.Integer()
