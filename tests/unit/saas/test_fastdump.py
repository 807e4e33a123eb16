"""saas.kernel.fastdump: the short path dumps exactly what marshmallow's own dump does."""

from __future__ import annotations

from collections import namedtuple
from datetime import UTC, date, datetime
from types import SimpleNamespace
from typing import Any

import marshmallow as ma
import pytest

from saas.customers.schemas import CustomerListSchema, CustomerSchema
from saas.kernel.fastdump import FastDump
from saas.subscriptions.schemas import SubscriptionListSchema, SubscriptionSchema

T0 = datetime(2026, 11, 22, 9, 30, tzinfo=UTC)

CUSTOMER = {
    "id": "cus_1",
    "livemode": False,
    "email": "kunde@example.de",
    "name": "Kundin Ä",
    "address_line1": "Hauptstr. 1",
    "address_line2": None,
    "postal_code": "10115",
    "city": "Berlin",
    "state": None,
    "country": "DE",
    "is_business": True,
    "vat_id": "DE811907980",
    "vat_id_status": "valid",
    "vat_id_checked_at": T0,
    "locale": "de-DE",
    "external_ref": None,
    "metadata_": {"crm": "42"},
    "test_clock_id": None,
    "created_at": T0,
    "updated_at": T0,
}
SUBSCRIPTION = {
    "id": "sub_1",
    "livemode": True,
    "customer_id": "cus_1",
    "price_id": "price_1",
    "quantity": 3,
    "currency": "EUR",
    "status": "active",
    "has_payment_method": True,
    "test_clock_id": None,
    "billing_anchor_on": date(2026, 11, 1),
    "started_at": T0,
    "trial_start_at": None,
    "trial_end_at": None,
    "current_period_start_at": T0,
    "current_period_end_at": T0,
    "cancel_at_period_end": False,
    "canceled_at": None,
    "ended_at": None,
    "paused_at": None,
    "scheduled_price_id": None,
    "scheduled_quantity": 5,
    "metadata_": {},
    "created_at": T0,
    "updated_at": T0,
}
Row: Any = namedtuple("Row", list(CUSTOMER))  # as saas.kernel.direct builds its rows


def _marshmallow(schema: ma.Schema, obj: Any, many: bool = False) -> Any:
    return ma.Schema.dump(schema, obj, many=many)


@pytest.mark.parametrize(
    "obj",
    [
        SimpleNamespace(**CUSTOMER),  # as the ORM's object
        Row(**CUSTOMER),
        SimpleNamespace(**{**CUSTOMER, "vat_id_status": None, "vat_id_checked_at": None}),
    ],
)
def test_customer_dump_equals_marshmallows_when_taking_the_short_path(obj: Any) -> None:
    schema = CustomerSchema()
    assert schema.dump(obj) == _marshmallow(schema, obj)
    assert schema.dump([obj, obj], many=True) == _marshmallow(schema, [obj, obj], many=True)


@pytest.mark.parametrize(
    "obj",
    [
        SimpleNamespace(**SUBSCRIPTION),
        SimpleNamespace(**{**SUBSCRIPTION, "scheduled_quantity": None}),
    ],
)
def test_subscription_dump_equals_marshmallows_when_taking_the_short_path(obj: Any) -> None:
    schema = SubscriptionSchema()
    assert schema.dump(obj) == _marshmallow(schema, obj)


@pytest.mark.parametrize(
    ("schema", "item"),
    [
        (CustomerListSchema(), Row(**CUSTOMER)),
        (SubscriptionListSchema(), SimpleNamespace(**SUBSCRIPTION)),
    ],
)
def test_list_envelope_dump_equals_marshmallows_when_items_are_nested(
    schema: ma.Schema, item: Any
) -> None:
    page = {"object": "list", "url": "/v1/x", "data": [item, item], "has_more": True}
    assert schema.dump(page) == _marshmallow(schema, page)


def test_object_missing_an_attribute_is_dumped_by_marshmallows_rules() -> None:
    partial = SimpleNamespace(**{k: v for k, v in CUSTOMER.items() if k != "external_ref"})
    schema = CustomerSchema()
    dumped = schema.dump(partial)
    assert "external_ref" not in dumped  # marshmallow leaves a missing key out
    assert dumped == _marshmallow(schema, partial)


def test_schema_with_a_hook_or_only_is_dumped_by_marshmallow() -> None:
    class Hooked(FastDump):
        name = ma.fields.String()

        @ma.post_dump
        def shout(self, data: dict[str, Any], **_: Any) -> dict[str, Any]:
            return {"name": data["name"].upper()}

    assert Hooked().dump({"name": "a"}) == {"name": "A"}
    only = CustomerSchema(only=("id", "email"))
    assert only.dump(CUSTOMER) == {"id": "cus_1", "email": "kunde@example.de"}


@pytest.mark.parametrize(
    "schema", [CustomerSchema, CustomerListSchema, SubscriptionSchema, SubscriptionListSchema]
)
def test_short_path_is_taken_when_a_schema_has_no_hooks(schema: type[FastDump]) -> None:
    assert schema()._fast_plan() is not None
