"""Dunning settings in and out. ``PUT`` replaces them: fields not sent get their defaults."""

from __future__ import annotations

import marshmallow as ma

from billing.dunning.schedule import (
    DEFAULT_FINAL_ACTION,
    DEFAULT_RETRY_DAYS,
    FINAL_ACTIONS,
    MAX_DAY,
    MAX_RETRIES,
)


class DunningSettingsIn(ma.Schema):
    retry_days = ma.fields.List(
        ma.fields.Integer(strict=True),
        load_default=lambda: list(DEFAULT_RETRY_DAYS),
        metadata={
            "description": f"Days after the first failed payment on which to retry: 1 to "
            f"{MAX_RETRIES} strictly increasing days between 1 and {MAX_DAY}.",
            "example": list(DEFAULT_RETRY_DAYS),
        },
    )
    final_action = ma.fields.String(
        load_default=DEFAULT_FINAL_ACTION,
        validate=ma.validate.OneOf(FINAL_ACTIONS),
        metadata={
            "description": "After the last retry failed: `cancel` the subscription now, or "
            "`mark_uncollectible` the invoice (the subscription stays `past_due`)."
        },
    )
    send_reminders = ma.fields.Boolean(
        load_default=True,
        metadata={"description": "E-mail the customer on each failure and the final notice."},
    )


class DunningSettingsOut(ma.Schema):
    object = ma.fields.Constant("dunning_settings")
    retry_days = ma.fields.List(ma.fields.Integer())
    final_action = ma.fields.String()
    send_reminders = ma.fields.Boolean()
    updated_at = ma.fields.DateTime(allow_none=True)
