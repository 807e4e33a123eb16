"""Adding a card in the customer portal, on SQLite and PostgreSQL, against a real localstripe
process and the real `stripe` client: the button appears only with Stripe configured, the
POST needs its CSRF token and starts a SetupIntent for the session's own Stripe customer,
and the return route asks Stripe (never the query string) before it keeps a card.

Stripe.js cannot load here (no internet): the tests confirm the SetupIntent server-side with
`pm_card_visa`, which is what Stripe.js does in the browser, then follow the return URL.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from html import unescape
from typing import Any
from urllib.parse import urlsplit

import pytest
import stripe
from flask.testing import FlaskClient

from billing.payments import runtime
from tests.api.test_portal import open_portal
from tests.api.test_seller_profile import put_profile
from tests.api.test_subscriptions import create_subscription, make_shop
from tests.conftest import CUSTOMER, TenantCtx
from tests.support.localstripe import running_localstripe

CLIENT_SECRET = re.compile(r'data-client-secret="([^"]+)"')
RETURN_URL = re.compile(r'data-return-url="([^"]+)"')


@pytest.fixture(scope="module")
def stripe_base() -> Iterator[str]:
    with running_localstripe() as base:
        yield base


@pytest.fixture
def stripe_api(stripe_base: str) -> Iterator[Any]:
    """The `stripe` client as the customer's browser would use it (Stripe.js); the app's
    gateways talk to the same localstripe meanwhile."""
    with runtime.overridden(stripe_api_base=stripe_base):
        yield stripe.StripeClient("sk_test_abowerk", base_addresses={"api": stripe_base}).v1


def configure(client: FlaskClient, t: TenantCtx, *, publishable: bool = True) -> dict[str, Any]:
    body: dict[str, Any] = {
        "provider": "stripe",
        "stripe_secret_key": f"sk_test_{secrets.token_hex(8)}",
    }
    if publishable:
        body["stripe_publishable_key"] = "pk_test_abowerk_portal"
    resp = client.put("/v1/payment-settings", json=body, headers=t.headers)
    assert resp.status_code == 200, resp.json
    return dict(resp.json)


@dataclass
class Setup:
    client_secret: str
    return_url: str

    @property
    def setup_intent_id(self) -> str:
        return self.client_secret.split("_secret_")[0]


def make_customer(client: FlaskClient, t: TenantCtx, email: str = "erika@example.de") -> str:
    resp = client.post("/v1/customers", json={**CUSTOMER, "email": email}, headers=t.headers)
    assert resp.status_code == 201, resp.json
    return str(resp.json["id"])


def add_card(client: FlaskClient, csrf: str) -> Setup:
    resp = client.post("/portal/payment-method/card", data={"csrf_token": csrf})
    assert resp.status_code == 200, resp.get_data(as_text=True)
    html = resp.get_data(as_text=True)
    secret = CLIENT_SECRET.search(html)
    back = RETURN_URL.search(html)
    assert secret and back, html
    return Setup(unescape(secret.group(1)), unescape(back.group(1)))


def follow_return(client: FlaskClient, setup: Setup, setup_intent_id: str | None = None) -> Any:
    """What Stripe does after confirmSetup: send the browser to return_url with the id."""
    target = urlsplit(setup.return_url)
    intent = setup_intent_id or setup.setup_intent_id
    return client.get(
        f"{target.path}?setup_intent={intent}"
        f"&setup_intent_client_secret={setup.client_secret}&redirect_status=succeeded"
    )


def payment_setup(client: FlaskClient, t: TenantCtx, customer_id: str) -> dict[str, Any]:
    resp = client.get(f"/v1/customers/{customer_id}/payment-setup", headers=t.headers)
    assert resp.status_code == 200, resp.json
    return dict(resp.json)


# --- settings -----------------------------------------------------------------------------


def test_publishable_key_is_stored_and_returned_when_put(
    client: FlaskClient, tenant: TenantCtx
) -> None:
    out = configure(client, tenant)
    assert out["stripe_publishable_key"] == "pk_test_abowerk_portal"
    got = client.get("/v1/payment-settings", headers=tenant.headers).json
    assert got["stripe_publishable_key"] == "pk_test_abowerk_portal"


@pytest.mark.parametrize("key", ["pk_live_abcdefgh", "sk_test_abcdefgh", "abcdefghijk"])
def test_publishable_key_of_another_mode_is_refused_when_put(
    client: FlaskClient, tenant: TenantCtx, key: str
) -> None:
    resp = client.put(
        "/v1/payment-settings", json={"stripe_publishable_key": key}, headers=tenant.headers
    )
    assert resp.status_code == 422, resp.json
    assert resp.json["code"] == "stripe_key_invalid"
    assert "stripe_publishable_key" in resp.json["errors"]
    got = client.get("/v1/payment-settings", headers=tenant.headers).json
    assert got["stripe_publishable_key"] is None


# --- the payment page ---------------------------------------------------------------------


def test_add_card_button_is_shown_only_when_stripe_is_fully_configured(
    client: FlaskClient, tenant: TenantCtx
) -> None:
    put_profile(client, tenant)
    customer_id = make_customer(client, tenant)
    open_portal(client, tenant, customer_id, locale="en")
    page = client.get("/portal/payment").get_data(as_text=True)
    assert "Add a card" not in page
    assert "DE89370400440532013000" in page  # the bank transfer stays
    configure(client, tenant, publishable=False)
    assert "Add a card" not in client.get("/portal/payment").get_data(as_text=True)
    configure(client, tenant)
    page = client.get("/portal/payment").get_data(as_text=True)
    assert 'data-testid="add-card"' in page and "Add a card" in page
    assert "DE89370400440532013000" in page
    assert "js.stripe.com" not in page  # Stripe.js only on the card page


def test_add_card_button_is_german_when_customer_locale_is_german(
    client: FlaskClient, tenant: TenantCtx
) -> None:
    configure(client, tenant)
    customer_id = make_customer(client, tenant)
    open_portal(client, tenant, customer_id, locale="de")
    assert "Karte hinzufügen" in client.get("/portal/payment").get_data(as_text=True)


def test_add_card_is_refused_when_csrf_token_is_missing(
    client: FlaskClient, tenant: TenantCtx, stripe_api: Any
) -> None:
    configure(client, tenant)
    customer_id = make_customer(client, tenant)
    open_portal(client, tenant, customer_id)
    assert client.post("/portal/payment-method/card").status_code == 400
    assert (
        client.post("/portal/payment-method/card", data={"csrf_token": "0" * 64}).status_code == 400
    )
    # nothing reached Stripe: no Stripe customer was created
    resp = client.get(f"/v1/customers/{customer_id}/payment-setup", headers=tenant.headers)
    assert resp.status_code == 404


def test_add_card_starts_a_setup_intent_for_the_sessions_stripe_customer_when_posted(
    client: FlaskClient, tenant: TenantCtx, stripe_api: Any
) -> None:
    configure(client, tenant)
    customer_id = make_customer(client, tenant)
    csrf = open_portal(client, tenant, customer_id)
    resp = client.post("/portal/payment-method/card", data={"csrf_token": csrf})
    assert resp.status_code == 200
    html = resp.get_data(as_text=True)
    assert '<script src="https://js.stripe.com/v3/"></script>' in html
    assert 'data-publishable-key="pk_test_abowerk_portal"' in html
    csp = resp.headers["Content-Security-Policy"]
    assert "script-src 'self' https://js.stripe.com" in csp
    assert "frame-src https://js.stripe.com https://*.js.stripe.com https://hooks.stripe.com" in csp
    assert "connect-src 'self' https://api.stripe.com" in csp
    assert "frame-ancestors 'none'" in csp and "'unsafe-inline'" not in csp
    # the other pages keep the strict policy
    other = client.get("/portal/payment").headers["Content-Security-Policy"]
    assert "stripe" not in other
    setup = add_card(client, csrf)
    assert urlsplit(setup.return_url).path == "/portal/payment-method/return"
    intent = stripe_api.setup_intents.retrieve(setup.setup_intent_id)
    record = payment_setup(client, tenant, customer_id)
    assert intent.customer == record["stripe_customer_id"]
    assert record["setup_intent_id"] == setup.setup_intent_id
    assert intent.status == "requires_payment_method"
    assert intent.usage == "off_session"
    # a second card set-up reuses the Stripe customer
    again = add_card(client, csrf)
    assert stripe_api.setup_intents.retrieve(again.setup_intent_id).customer == intent.customer


def test_card_is_stored_and_shown_when_the_confirmed_setup_intent_returns(
    client: FlaskClient, tenant: TenantCtx, stripe_api: Any
) -> None:
    configure(client, tenant)
    shop = make_shop(client, tenant)
    customer_id = make_customer(client, tenant)
    sub = create_subscription(
        client, tenant, shop.price_id("starter"), customer_id=customer_id, has_payment_method=False
    )
    assert sub["status"] == "incomplete"
    csrf = open_portal(client, tenant, customer_id, locale="en")
    setup = add_card(client, csrf)
    # what Stripe.js does in the browser
    stripe_api.setup_intents.confirm(
        setup.setup_intent_id,
        params={"payment_method": "pm_card_visa", "client_secret": setup.client_secret},
    )
    back = follow_return(client, setup)
    assert back.status_code == 303, back.get_data(as_text=True)
    page = client.get(back.headers["Location"]).get_data(as_text=True)
    assert "Your card has been saved." in page
    assert "card Visa ending in 4242" in page
    record = payment_setup(client, tenant, customer_id)
    assert record["status"] == "ready"
    assert record["card_brand"] == "visa" and record["card_last4"] == "4242"
    intent = stripe_api.setup_intents.retrieve(setup.setup_intent_id)
    assert record["default_payment_method_id"] == intent.payment_method
    got = client.get(f"/v1/subscriptions/{sub['id']}", headers=tenant.headers).json
    assert got["has_payment_method"] is True
    assert got["status"] == "active"
    # a reload of the return URL changes nothing
    assert follow_return(client, setup).status_code == 303
    assert payment_setup(client, tenant, customer_id) == record


def test_card_is_saved_in_german_when_customer_locale_is_german(
    client: FlaskClient, tenant: TenantCtx, stripe_api: Any
) -> None:
    configure(client, tenant)
    customer_id = make_customer(client, tenant)
    csrf = open_portal(client, tenant, customer_id, locale="de")
    setup = add_card(client, csrf)
    stripe_api.setup_intents.confirm(
        setup.setup_intent_id,
        params={"payment_method": "pm_card_visa", "client_secret": setup.client_secret},
    )
    back = follow_return(client, setup)
    page = client.get(back.headers["Location"]).get_data(as_text=True)
    assert "Ihre Karte wurde gespeichert." in page


def test_another_customers_setup_intent_is_refused_when_put_in_the_return_url(
    app: Any, client: FlaskClient, tenant: TenantCtx, stripe_api: Any
) -> None:
    configure(client, tenant)
    victim = make_customer(client, tenant, "victim@example.de")
    theirs = app.test_client()
    their_setup = add_card(theirs, open_portal(theirs, tenant, victim))
    stripe_api.setup_intents.confirm(
        their_setup.setup_intent_id,
        params={"payment_method": "pm_card_visa", "client_secret": their_setup.client_secret},
    )
    attacker = make_customer(client, tenant, "mallory@example.de")
    csrf = open_portal(client, tenant, attacker)
    mine = add_card(client, csrf)
    resp = follow_return(client, mine, their_setup.setup_intent_id)
    assert resp.status_code == 404
    record = payment_setup(client, tenant, attacker)
    assert record["default_payment_method_id"] is None and record["card_last4"] is None
    assert "ending in" not in client.get("/portal/payment").get_data(as_text=True)
    # an id Stripe does not know, and one that is no SetupIntent id at all
    assert follow_return(client, mine, "seti_doesnotexist123").status_code == 404
    assert follow_return(client, mine, "pm_card_visa").status_code == 404
    assert payment_setup(client, tenant, attacker)["card_last4"] is None


def test_setup_intent_of_a_customer_without_stripe_set_up_is_refused_when_returned(
    app: Any, client: FlaskClient, tenant: TenantCtx, stripe_api: Any
) -> None:
    configure(client, tenant)
    victim = make_customer(client, tenant, "victim@example.de")
    theirs = app.test_client()
    their_setup = add_card(theirs, open_portal(theirs, tenant, victim))
    newcomer = make_customer(client, tenant, "new@example.de")
    open_portal(client, tenant, newcomer)
    assert follow_return(client, their_setup).status_code == 404
    resp = client.get(f"/v1/customers/{newcomer}/payment-setup", headers=tenant.headers)
    assert resp.status_code == 404


def test_nothing_is_stored_when_the_setup_intent_was_not_confirmed(
    client: FlaskClient, tenant: TenantCtx, stripe_api: Any
) -> None:
    configure(client, tenant)
    customer_id = make_customer(client, tenant)
    csrf = open_portal(client, tenant, customer_id, locale="en")
    setup = add_card(client, csrf)
    resp = follow_return(client, setup)
    assert resp.status_code == 200
    html = resp.get_data(as_text=True)
    assert "Your card was not saved. Please try again or use another card." in html
    assert "ending in" not in html
    record = payment_setup(client, tenant, customer_id)
    assert record["status"] == "setup_pending" and record["default_payment_method_id"] is None


def test_nothing_is_stored_when_the_card_was_declined_at_setup(
    client: FlaskClient, tenant: TenantCtx, stripe_api: Any
) -> None:
    configure(client, tenant)
    customer_id = make_customer(client, tenant)
    csrf = open_portal(client, tenant, customer_id, locale="de")
    setup = add_card(client, csrf)
    with pytest.raises(stripe.CardError):
        stripe_api.setup_intents.confirm(
            setup.setup_intent_id,
            params={
                "payment_method": "pm_card_visa_chargeDeclined",
                "client_secret": setup.client_secret,
            },
        )
    resp = follow_return(client, setup)
    assert resp.status_code == 200
    html = resp.get_data(as_text=True)
    assert "Ihre Karte wurde nicht gespeichert." in html
    record = payment_setup(client, tenant, customer_id)
    assert record["default_payment_method_id"] is None and record["card_last4"] is None


def test_add_card_is_refused_when_stripe_has_no_publishable_key(
    client: FlaskClient, tenant: TenantCtx, stripe_api: Any
) -> None:
    configure(client, tenant, publishable=False)
    customer_id = make_customer(client, tenant)
    csrf = open_portal(client, tenant, customer_id)
    resp = client.post("/portal/payment-method/card", data={"csrf_token": csrf})
    assert resp.status_code == 409
    assert "js.stripe.com" not in resp.get_data(as_text=True)
