from __future__ import annotations

from datetime import datetime

import marshmallow as ma


def _aware(value: datetime) -> None:
    if value.tzinfo is None:
        raise ma.ValidationError("give a time zone offset, e.g. 2026-01-31T10:00:00Z")


class _FrozenTime(ma.Schema):
    frozen_time = ma.fields.AwareDateTime(required=True, validate=_aware)


class TestClockCreateSchema(_FrozenTime):
    __test__ = False
    name = ma.fields.String(allow_none=True, validate=ma.validate.Length(max=200))


class TestClockAdvanceSchema(_FrozenTime):
    __test__ = False


class TestClockSchema(ma.Schema):
    __test__ = False
    id = ma.fields.String()
    object = ma.fields.Constant("test_clock")
    livemode = ma.fields.Boolean()
    name = ma.fields.String(allow_none=True)
    frozen_time = ma.fields.DateTime()
    status = ma.fields.String()
    created_at = ma.fields.DateTime()
    updated_at = ma.fields.DateTime()


class TestClockListSchema(ma.Schema):
    __test__ = False
    object = ma.fields.Constant("list")
    url = ma.fields.String()
    data = ma.fields.List(ma.fields.Nested(TestClockSchema))
    has_more = ma.fields.Boolean()
