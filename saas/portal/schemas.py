"""Input and output of `POST /v1/portal/sessions`."""

from __future__ import annotations

import marshmallow as ma

from saas.customers.validation import LOCALE


class PortalSessionCreateSchema(ma.Schema):
    class Meta:
        unknown = ma.RAISE

    customer_id = ma.fields.String(required=True, validate=ma.validate.Length(max=40))
    return_url = ma.fields.Url(
        load_default=None,
        schemes={"http", "https"},
        require_tld=False,
        validate=ma.validate.Length(max=2000),
        metadata={"description": "Where the portal's “back” link leads (your application)."},
    )
    locale = ma.fields.String(
        load_default=None,
        validate=ma.validate.Regexp(LOCALE),
        metadata={"description": "`de` or `en` (`de-DE` …); default: the customer's locale."},
    )


class PortalSessionSchema(ma.Schema):
    id = ma.fields.String()
    object = ma.fields.Constant("portal.session")
    livemode = ma.fields.Boolean()
    customer_id = ma.fields.String()
    url = ma.fields.String(metadata={"description": "One-time link; send the customer there."})
    return_url = ma.fields.String(allow_none=True)
    locale = ma.fields.String()
    created_at = ma.fields.DateTime()
    expires_at = ma.fields.DateTime()
