"""Adding a card in the portal, in Chromium, with the portal's Stripe calls going to a real
localstripe. Stripe.js itself cannot load here (no internet; the test blocks js.stripe.com so
that it fails at once): the card page must then say so instead of hanging, its own script
must run under the page's Content-Security-Policy, and the return from Stripe (the SetupIntent
confirmed as Stripe.js would) must show the saved card."""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
import stripe
from playwright.sync_api import expect

from billing.payments import runtime
from tests.api.test_portal import portal_link
from tests.browser.conftest import Site
from tests.conftest import CUSTOMER
from tests.support.localstripe import running_localstripe


@pytest.fixture
def stripe_api() -> Iterator[Any]:
    with running_localstripe() as base, runtime.overridden(stripe_api_base=base):
        yield stripe.StripeClient("sk_test_abowerk", base_addresses={"api": base}).v1


def test_card_page_reports_an_unreachable_stripe_then_the_returned_card_is_shown(
    site: Site, page: Any, stripe_api: Any
) -> None:
    tenant = site.tenant("Karten GmbH")
    client = site.client()
    resp = client.put(
        "/v1/payment-settings",
        json={
            "stripe_secret_key": f"sk_test_{secrets.token_hex(8)}",
            "stripe_publishable_key": "pk_test_abowerk_browser",
        },
        headers=tenant.headers,
    )
    assert resp.status_code == 200, resp.json
    customer = client.post("/v1/customers", json=CUSTOMER, headers=tenant.headers).json["id"]
    link = portal_link(client, tenant, customer, locale="en")

    blocked: list[str] = []
    page.route(
        re.compile(r"^https://([a-z0-9-]+\.)*stripe\.com/"),
        lambda route: (blocked.append(route.request.url), route.abort()),
    )
    refused: list[str] = []
    page.on(
        "console",
        lambda msg: refused.append(msg.text) if "Content Security Policy" in msg.text else None,
    )
    page.goto(site.base_url + urlsplit(link["url"]).path)
    page.get_by_role("link", name="Payment").click()
    page.get_by_role("button", name="Add a card").click()
    expect(page.get_by_role("heading", name="Add a card")).to_be_visible()
    expect(page.locator("#card-feedback")).to_have_text(
        "The card form could not be loaded. Please check your connection and try again."
    )
    expect(page.get_by_role("button", name="Save card")).to_be_disabled()
    assert blocked == ["https://js.stripe.com/v3/"]
    assert refused == []

    # what Stripe.js would have done, then Stripe's redirect back to the portal
    form = page.get_by_test_id("card-setup")
    client_secret = form.get_attribute("data-client-secret")
    return_url = form.get_attribute("data-return-url")
    assert client_secret and return_url
    intent_id = client_secret.split("_secret_")[0]
    stripe_api.setup_intents.confirm(
        intent_id, params={"payment_method": "pm_card_visa", "client_secret": client_secret}
    )
    page.goto(f"{return_url}?setup_intent={intent_id}&redirect_status=succeeded")
    expect(page).to_have_url(re.compile(r"/portal/payment\?done=card_saved$"))
    expect(page.get_by_role("status")).to_have_text("Your card has been saved.")
    expect(page.get_by_test_id("card")).to_contain_text("Visa ending in 4242")
    assert refused == []
