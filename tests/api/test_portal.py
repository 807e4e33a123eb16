"""The customer portal over HTTP: one-time links, the session cookie, CSRF, tenant and
customer isolation by URL tampering, plan changes, documents, VAT IDs, privacy requests."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import ROUND_HALF_UP, Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from saas.kernel.clock import utcnow
from tests.api.test_invoices import CUSTOMERS, finalize, make_draft
from tests.api.test_seller_profile import put_profile
from tests.api.test_subscriptions import Shop, create_subscription, make_shop
from tests.conftest import TenantCtx

# --- a local stand-in for VIES: the portal's real client talks to it over HTTP -------------


@dataclass
class Vies:
    valid: set[str] = field(default_factory=set)
    asked: list[str] = field(default_factory=list)


@pytest.fixture
def vies(app: Flask) -> Iterator[Vies]:
    state = Vies(valid={"ATU13585627", "DE136695976"})

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            number = body["countryCode"] + body["vatNumber"]
            state.asked.append(number)
            reply = {
                "countryCode": body["countryCode"],
                "vatNumber": body["vatNumber"],
                "valid": number in state.valid,
                "requestIdentifier": "WAPI-LOCAL",
                "name": "Alpenblick Software GmbH" if number in state.valid else "---",
                "address": "---",
            }
            payload = json.dumps(reply).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    before = app.config.get("ABOWERK_VIES_URL")
    app.config["ABOWERK_VIES_URL"] = f"http://127.0.0.1:{server.server_address[1]}/check"
    try:
        yield state
    finally:
        app.config["ABOWERK_VIES_URL"] = before
        server.shutdown()
        server.server_close()
        thread.join()


# --- helpers ------------------------------------------------------------------------------

CSRF = re.compile(r'name="csrf_token" value="([0-9a-f]{64})"')


def portal_link(
    client: FlaskClient, t: TenantCtx, customer_id: str, **fields: Any
) -> dict[str, Any]:
    resp = client.post(
        "/v1/portal/sessions", json={"customer_id": customer_id, **fields}, headers=t.headers
    )
    assert resp.status_code == 201, resp.json
    return dict(resp.json)


def open_portal(client: FlaskClient, t: TenantCtx, customer_id: str, **fields: Any) -> str:
    """Redeem a fresh link in `client` (its cookie jar keeps the session); the CSRF token."""
    link = portal_link(client, t, customer_id, **fields)
    resp = client.get(urlsplit(link["url"]).path)
    assert resp.status_code == 303, resp.get_data(as_text=True)
    page = client.get("/portal/")
    assert page.status_code == 200, page.get_data(as_text=True)
    return csrf_of(page.get_data(as_text=True))


def csrf_of(html: str) -> str:
    match = CSRF.search(html)
    assert match, "no CSRF token on the page"
    return match.group(1)


@dataclass
class World:
    shop: Shop
    customer_id: str
    subscription: dict[str, Any]
    invoice: dict[str, Any]


def make_world(client: FlaskClient, t: TenantCtx) -> World:
    """A seller with a profile and a catalog; a German business customer on Starter with a
    finalized invoice."""
    put_profile(client, t)
    shop = make_shop(client, t)
    resp = client.post(
        "/v1/customers", json={**CUSTOMERS["de_business"], "locale": "en-GB"}, headers=t.headers
    )
    assert resp.status_code == 201, resp.json
    customer_id = str(resp.json["id"])
    sub = create_subscription(client, t, shop.price_id("starter"), customer_id=customer_id)
    invoice = finalize(client, t, make_draft(client, t, customer_id=customer_id)["id"])
    return World(shop, customer_id, sub, invoice)


# --- sessions -----------------------------------------------------------------------------


def test_link_opens_a_cookie_session_for_that_customer_when_redeemed(
    client: FlaskClient, tenant: TenantCtx
) -> None:
    world = make_world(client, tenant)
    link = portal_link(
        client, tenant, world.customer_id, return_url="https://app.example/account", locale="de"
    )
    assert link["object"] == "portal.session"
    assert link["locale"] == "de"
    assert link["url"].startswith("http://localhost/portal/start/")
    resp = client.get(urlsplit(link["url"]).path)
    assert resp.status_code == 303
    assert resp.headers["Location"].endswith("/portal/")
    cookie = resp.headers["Set-Cookie"]
    for attribute in ("HttpOnly", "Secure", "SameSite=Lax", "Path=/portal"):
        assert attribute in cookie
    page = client.get("/portal/")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "Nordlicht Handels AG" in html
    assert "Starter" in html
    assert '<html lang="de">' in html  # the link's locale
    csp = page.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp
    assert page.headers["Cache-Control"] == "no-store"


def test_link_expires_in_minutes_when_created(client: FlaskClient, tenant: TenantCtx) -> None:
    world = make_world(client, tenant)
    link = portal_link(client, tenant, world.customer_id)
    from datetime import datetime

    created = datetime.fromisoformat(link["created_at"])
    expires = datetime.fromisoformat(link["expires_at"])
    assert timedelta(minutes=1) <= expires - created <= timedelta(minutes=10)


def test_link_is_refused_when_reused(client: FlaskClient, tenant: TenantCtx) -> None:
    world = make_world(client, tenant)
    path = urlsplit(portal_link(client, tenant, world.customer_id)["url"]).path
    assert client.get(path).status_code == 303
    other_browser = client.application.test_client()
    again = other_browser.get(path)
    assert again.status_code == 401
    assert "no longer valid" in again.get_data(as_text=True)
    assert "Set-Cookie" not in again.headers


def test_link_is_refused_when_expired(
    client: FlaskClient, tenant: TenantCtx, owner_engine: sa.Engine
) -> None:
    world = make_world(client, tenant)
    link = portal_link(client, tenant, world.customer_id)
    with owner_engine.begin() as conn:
        conn.execute(
            sa.text("UPDATE portal_links SET expires_at = :t WHERE id = :id"),
            {"t": utcnow() - timedelta(seconds=1), "id": link["id"]},
        )
    assert client.get(urlsplit(link["url"]).path).status_code == 401


@pytest.mark.parametrize(
    "mangle",
    [
        lambda token: token[:-1] + ("A" if token[-1] != "A" else "B"),  # wrong secret
        lambda token: "ten_00000000000000000000000000" + token[token.index(".") :],
        lambda token: token.split(".", 1)[1],  # no tenant part
    ],
    ids=["secret", "tenant", "shape"],
)
def test_tampered_link_is_refused_when_opened(
    client: FlaskClient, tenant: TenantCtx, mangle: Any
) -> None:
    world = make_world(client, tenant)
    token = urlsplit(portal_link(client, tenant, world.customer_id)["url"]).path.rsplit("/", 1)[1]
    assert client.get(f"/portal/start/{mangle(token)}").status_code == 401


def test_pages_need_a_session_when_no_cookie_is_sent(client: FlaskClient) -> None:
    resp = client.get("/portal/")
    assert resp.status_code == 401
    assert resp.mimetype == "text/html"


def test_session_ends_when_signed_out(client: FlaskClient, tenant: TenantCtx) -> None:
    world = make_world(client, tenant)
    csrf = open_portal(client, tenant, world.customer_id, return_url="https://app.example/x")
    resp = client.post("/portal/sign_out", data={"csrf_token": csrf})
    assert resp.status_code == 303
    assert resp.headers["Location"] == "https://app.example/x"
    assert client.get("/portal/").status_code == 401


def test_session_is_refused_when_it_has_expired(
    client: FlaskClient, tenant: TenantCtx, owner_engine: sa.Engine
) -> None:
    world = make_world(client, tenant)
    open_portal(client, tenant, world.customer_id)
    with owner_engine.begin() as conn:
        conn.execute(
            sa.text("UPDATE portal_sessions SET expires_at = :t"),
            {"t": utcnow() - timedelta(seconds=1)},
        )
    assert client.get("/portal/").status_code == 401


def test_pages_pin_https_when_served_over_tls(client: FlaskClient, tenant: TenantCtx) -> None:
    world = make_world(client, tenant)
    link = portal_link(client, tenant, world.customer_id)
    resp = client.get(urlsplit(link["url"]).path, base_url="https://portal.example")
    assert resp.status_code == 303
    page = client.get("/portal/", base_url="https://portal.example")
    assert page.status_code == 200
    assert page.headers["Strict-Transport-Security"].startswith("max-age=")
    assert page.headers["X-Frame-Options"] == "DENY"
    assert "Strict-Transport-Security" not in client.get("/portal/").headers


def test_another_tenants_customer_gets_no_link_when_asked(
    client: FlaskClient, tenant: TenantCtx, other_tenant: TenantCtx
) -> None:
    world = make_world(client, tenant)
    resp = client.post(
        "/v1/portal/sessions", json={"customer_id": world.customer_id}, headers=other_tenant.headers
    )
    assert resp.status_code == 404


def test_link_needs_the_portal_scope_when_created(
    client: FlaskClient, tenant: TenantCtx, make_tenant: Any
) -> None:
    narrow = make_tenant("Schmal GmbH", scopes=["customers:write"])
    customer = client.post("/v1/customers", json=CUSTOMERS["de_consumer"], headers=narrow.headers)
    resp = client.post(
        "/v1/portal/sessions", json={"customer_id": customer.json["id"]}, headers=narrow.headers
    )
    assert resp.status_code == 403
    assert resp.json["code"] == "insufficient_scope"


def test_return_url_must_be_http_when_given(client: FlaskClient, tenant: TenantCtx) -> None:
    world = make_world(client, tenant)
    resp = client.post(
        "/v1/portal/sessions",
        json={"customer_id": world.customer_id, "return_url": "javascript:alert(1)"},
        headers=tenant.headers,
    )
    assert resp.status_code == 422


# --- CSRF ---------------------------------------------------------------------------------


@pytest.mark.parametrize("token", [None, "", "0" * 64], ids=["missing", "empty", "wrong"])
def test_form_is_rejected_when_csrf_token_is_missing_or_wrong(
    client: FlaskClient, tenant: TenantCtx, token: str | None
) -> None:
    world = make_world(client, tenant)
    open_portal(client, tenant, world.customer_id)
    data = {"reason": "too_expensive"}
    if token is not None:
        data["csrf_token"] = token
    resp = client.post(f"/portal/subscriptions/{world.subscription['id']}/cancel", data=data)
    assert resp.status_code == 400
    sub = client.get(f"/v1/subscriptions/{world.subscription['id']}", headers=tenant.headers)
    assert sub.json["cancel_at_period_end"] is False


def test_csrf_token_of_another_session_is_rejected_when_posted(
    client: FlaskClient, tenant: TenantCtx
) -> None:
    world = make_world(client, tenant)
    other = client.application.test_client()
    foreign = open_portal(other, tenant, world.customer_id)
    open_portal(client, tenant, world.customer_id)
    resp = client.post(
        f"/portal/subscriptions/{world.subscription['id']}/cancel",
        data={"reason": "unused", "csrf_token": foreign},
    )
    assert resp.status_code == 400


def test_fetch_without_csrf_header_is_rejected_when_checking_vat_ids(
    client: FlaskClient, tenant: TenantCtx
) -> None:
    world = make_world(client, tenant)
    open_portal(client, tenant, world.customer_id)
    assert client.post("/portal/vat_id/syntax", json={"vat_id": "x"}).status_code == 400


# --- URL tampering ------------------------------------------------------------------------


def test_another_customers_objects_are_not_found_when_ids_are_put_in_urls(
    client: FlaskClient, tenant: TenantCtx
) -> None:
    mine = make_world(client, tenant)
    theirs = make_world(client, tenant)
    csrf = open_portal(client, tenant, mine.customer_id)
    their_invoice, their_sub = theirs.invoice["id"], theirs.subscription["id"]
    for fmt in ("pdf", "xml"):
        assert client.get(f"/portal/invoices/{their_invoice}.{fmt}").status_code == 404
    assert client.get(f"/portal/subscriptions/{their_sub}/plan").status_code == 404
    for action in ("cancel", "uncancel", "resume", "change", "preview"):
        resp = client.post(
            f"/portal/subscriptions/{their_sub}/{action}",
            data={"csrf_token": csrf, "reason": "other", "quantity": "2"},
        )
        assert resp.status_code == 404, action
    assert their_invoice not in client.get("/portal/invoices").get_data(as_text=True)
    # the other customer's subscription is untouched
    got = client.get(f"/v1/subscriptions/{their_sub}", headers=tenant.headers).json
    assert got["quantity"] == 1 and got["cancel_at_period_end"] is False


def test_another_tenants_objects_are_not_found_when_ids_are_put_in_urls(
    client: FlaskClient, tenant: TenantCtx, other_tenant: TenantCtx
) -> None:
    mine = make_world(client, tenant)
    theirs = make_world(client, other_tenant)
    csrf = open_portal(client, tenant, mine.customer_id)
    assert client.get(f"/portal/invoices/{theirs.invoice['id']}.pdf").status_code == 404
    resp = client.post(
        f"/portal/subscriptions/{theirs.subscription['id']}/cancel",
        data={"csrf_token": csrf, "reason": "other"},
    )
    assert resp.status_code == 404
    gdpr = client.post(
        "/v1/gdpr/requests",
        json={"customer_id": theirs.customer_id, "kind": "access"},
        headers=other_tenant.headers,
    )
    resp = client.post(
        f"/portal/privacy/requests/{gdpr.json['id']}/download", data={"csrf_token": csrf}
    )
    assert resp.status_code == 404


# --- subscription -------------------------------------------------------------------------


def test_overview_shows_next_invoice_with_vat_when_tax_engine_decides(
    client: FlaskClient, tenant: TenantCtx
) -> None:
    world = make_world(client, tenant)
    open_portal(client, tenant, world.customer_id, locale="en")
    html = client.get("/portal/").get_data(as_text=True)
    # Starter 19.00 net, German business customer of a German seller: 19 % VAT
    assert "€22.61" in html
    assert "net €19.00 + VAT €3.61" in html


def test_upgrade_shows_proration_then_changes_the_plan_when_confirmed(
    client: FlaskClient, tenant: TenantCtx
) -> None:
    world = make_world(client, tenant)
    csrf = open_portal(client, tenant, world.customer_id, locale="en")
    sub_id = world.subscription["id"]
    plan_page = client.get(f"/portal/subscriptions/{sub_id}/plan").get_data(as_text=True)
    pro = world.shop.price_id("pro")
    assert pro in plan_page
    preview = client.post(
        f"/portal/subscriptions/{sub_id}/preview",
        data={"csrf_token": csrf, "price_id": pro, "quantity": "1"},
    )
    assert preview.status_code == 200
    expected = client.post(
        f"/v1/subscriptions/{sub_id}/change/preview", json={"price_id": pro}, headers=tenant.headers
    ).json
    page = preview.get_data(as_text=True)
    total = Decimal(expected["total"]).scaleb(-2)
    assert f"€{total:,.2f}" in page
    # German business customer of a German seller: 19 % on top, as the invoice will charge
    gross = (total * Decimal("1.19")).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    assert f"€{gross:,.2f}" in page and "VAT 19 %" in page
    unchanged = client.get(f"/v1/subscriptions/{sub_id}", headers=tenant.headers).json
    assert unchanged["price_id"] == world.shop.price_id("starter")
    done = client.post(
        f"/portal/subscriptions/{sub_id}/change",
        data={"csrf_token": csrf_of(page), "price_id": pro, "quantity": "1"},
    )
    assert done.status_code == 303
    assert client.get(f"/v1/subscriptions/{sub_id}", headers=tenant.headers).json["price_id"] == pro
    history = client.get(f"/v1/subscriptions/{sub_id}/history", headers=tenant.headers).json
    assert history["data"][0]["actor"].startswith("portal:psn_")


def test_downgrade_is_scheduled_for_the_period_end_when_customer_chooses_so(
    client: FlaskClient, tenant: TenantCtx
) -> None:
    world = make_world(client, tenant)
    sub_id = world.subscription["id"]
    pro = world.shop.price_id("pro")
    assert (
        client.post(
            f"/v1/subscriptions/{sub_id}/change", json={"price_id": pro}, headers=tenant.headers
        ).status_code
        == 200
    )
    csrf = open_portal(client, tenant, world.customer_id, locale="en")
    form = {"csrf_token": csrf, "price_id": world.shop.price_id("starter"), "quantity": "1",
            "proration": "period_end"}  # fmt: skip
    preview = client.post(f"/portal/subscriptions/{sub_id}/preview", data=form)
    assert preview.status_code == 200
    assert "Nothing is charged now" in preview.get_data(as_text=True)
    done = client.post(f"/portal/subscriptions/{sub_id}/change", data=form)
    assert done.status_code == 303
    sub = client.get(f"/v1/subscriptions/{sub_id}", headers=tenant.headers).json
    assert sub["price_id"] == pro
    assert sub["scheduled_change"]["price_id"] == world.shop.price_id("starter")
    assert "Changes at the period end to" in client.get("/portal/").get_data(as_text=True)


def test_cancel_records_reason_and_undo_keeps_subscription_when_customer_changes_mind(
    client: FlaskClient, tenant: TenantCtx, owner_engine: sa.Engine
) -> None:
    world = make_world(client, tenant)
    csrf = open_portal(client, tenant, world.customer_id)
    sub_id = world.subscription["id"]
    bad = client.post(
        f"/portal/subscriptions/{sub_id}/cancel", data={"csrf_token": csrf, "reason": "meh"}
    )
    assert bad.status_code == 422
    resp = client.post(
        f"/portal/subscriptions/{sub_id}/cancel",
        data={"csrf_token": csrf, "reason": "too_expensive"},
    )
    assert resp.status_code == 303
    sub = client.get(f"/v1/subscriptions/{sub_id}", headers=tenant.headers).json
    assert sub["cancel_at_period_end"] is True and sub["status"] == "active"
    with owner_engine.connect() as conn:
        reasons = conn.execute(sa.text("SELECT reason FROM cancellation_reasons")).scalars().all()
    assert reasons == ["too_expensive"]
    assert (
        client.post(
            f"/portal/subscriptions/{sub_id}/uncancel", data={"csrf_token": csrf}
        ).status_code
        == 303
    )
    sub = client.get(f"/v1/subscriptions/{sub_id}", headers=tenant.headers).json
    assert sub["cancel_at_period_end"] is False


def test_paused_subscription_resumes_when_customer_asks(
    client: FlaskClient, tenant: TenantCtx
) -> None:
    world = make_world(client, tenant)
    sub_id = world.subscription["id"]
    paused = client.post(f"/v1/subscriptions/{sub_id}/pause", json={}, headers=tenant.headers)
    assert paused.status_code == 200, paused.json
    csrf = open_portal(client, tenant, world.customer_id)
    assert "Resume" in client.get("/portal/").get_data(as_text=True)
    resp = client.post(f"/portal/subscriptions/{sub_id}/resume", data={"csrf_token": csrf})
    assert resp.status_code == 303
    assert client.get(f"/v1/subscriptions/{sub_id}", headers=tenant.headers).json["status"] == (
        "active"
    )


# --- documents ----------------------------------------------------------------------------


def test_invoice_pdf_and_xml_download_when_listed(client: FlaskClient, tenant: TenantCtx) -> None:
    world = make_world(client, tenant)
    open_portal(client, tenant, world.customer_id)
    listing = client.get("/portal/invoices").get_data(as_text=True)
    assert world.invoice["number"] in listing
    pdf = client.get(f"/portal/invoices/{world.invoice['id']}.pdf")
    assert pdf.status_code == 200
    assert pdf.mimetype == "application/pdf" and pdf.data.startswith(b"%PDF")
    api_pdf = client.get(f"/v1/invoices/{world.invoice['id']}/pdf", headers=tenant.headers)
    assert pdf.data == api_pdf.data  # the same stored document
    xml = client.get(f"/portal/invoices/{world.invoice['id']}.xml")
    assert xml.status_code == 200 and b"CrossIndustryInvoice" in xml.data


def test_credit_note_is_listed_when_invoice_was_corrected(
    client: FlaskClient, tenant: TenantCtx
) -> None:
    world = make_world(client, tenant)
    note = client.post(
        "/v1/credit-notes", json={"invoice_id": world.invoice["id"]}, headers=tenant.headers
    )
    assert note.status_code == 201, note.json
    open_portal(client, tenant, world.customer_id, locale="en")
    listing = client.get("/portal/invoices").get_data(as_text=True)
    assert "Credit note" in listing and note.json["number"] in listing
    assert client.get(f"/portal/invoices/{note.json['id']}.pdf").status_code == 200


# --- billing details and VAT ID -----------------------------------------------------------


def test_vat_id_syntax_is_checked_without_vies_when_typed(
    client: FlaskClient, tenant: TenantCtx, vies: Vies
) -> None:
    world = make_world(client, tenant)
    csrf = open_portal(client, tenant, world.customer_id, locale="en")
    headers = {"X-CSRF-Token": csrf}
    bad = client.post("/portal/vat_id/syntax", json={"vat_id": "ATU1234"}, headers=headers)
    assert bad.json["valid"] is False and bad.json["reason"] == "invalid_length"
    good = client.post("/portal/vat_id/syntax", json={"vat_id": "atu 135 856 27"}, headers=headers)
    assert good.json == {
        "valid": True,
        "vat_id": "ATU13585627",
        "message": "Format correct. Asking VIES …",
    }
    assert vies.asked == []
    confirmed = client.post(
        "/portal/vat_id/verify", json={"vat_id": "ATU13585627"}, headers=headers
    )
    assert confirmed.json["status"] == "valid"
    assert vies.asked == ["ATU13585627"]


def test_billing_details_are_saved_with_the_vies_result_when_valid(
    client: FlaskClient, tenant: TenantCtx, vies: Vies
) -> None:
    world = make_world(client, tenant)
    csrf = open_portal(client, tenant, world.customer_id)
    form = {
        "csrf_token": csrf,
        "line1": "Maria-Theresien-Straße 21",
        "postal_code": "6020",
        "city": "Innsbruck",
        "country": "AT",
        "is_business": "1",
        "vat_id": "ATU1234",
    }
    refused = client.post("/portal/billing", data=form)
    assert refused.status_code == 422
    assert 'aria-invalid="true"' in refused.get_data(as_text=True)
    saved = client.post("/portal/billing", data={**form, "vat_id": "ATU13585627"})
    assert saved.status_code == 303
    customer = client.get(f"/v1/customers/{world.customer_id}", headers=tenant.headers).json
    assert customer["vat_id"] == "ATU13585627"
    assert customer["vat_id_check"]["status"] == "valid"
    assert customer["address"]["country"] == "AT"


# --- payment ------------------------------------------------------------------------------


def test_payment_page_shows_the_sellers_bank_account_when_transfer_is_used(
    client: FlaskClient, tenant: TenantCtx
) -> None:
    world = make_world(client, tenant)
    open_portal(client, tenant, world.customer_id)
    assert "DE89370400440532013000" in client.get("/portal/payment").get_data(as_text=True)


def test_payment_page_shows_the_card_on_file_when_stripe_has_one(
    app: Flask, client: FlaskClient, tenant: TenantCtx
) -> None:
    from billing.payments.models import PaymentCustomer
    from saas.extensions import db
    from saas.kernel import tenancy
    from saas.kernel.ids import new_id

    world = make_world(client, tenant)
    with app.app_context():
        tenancy.set_tenant(db.session, tenant.tenant_id, livemode=False)
        now = utcnow()
        db.session.add(
            PaymentCustomer(
                id=new_id("pcu"),
                livemode=False,
                customer_id=world.customer_id,
                provider="stripe",
                external_customer_id="cus_local_1",
                status="ready",
                default_payment_method_id="pm_card_visa",
                card_brand="visa",
                card_last4="4242",
                created_at=now,
                updated_at=now,
            )
        )
        db.session.commit()
        db.session.remove()
    open_portal(client, tenant, world.customer_id, locale="en")
    html = client.get("/portal/payment").get_data(as_text=True)
    assert "card Visa ending in 4242" in html


# --- privacy ------------------------------------------------------------------------------


def test_export_is_built_and_downloaded_once_when_requested(
    client: FlaskClient, tenant: TenantCtx
) -> None:
    world = make_world(client, tenant)
    csrf = open_portal(client, tenant, world.customer_id)
    resp = client.post("/portal/privacy/export", data={"csrf_token": csrf})
    assert resp.status_code == 303
    requests = client.get(
        f"/v1/gdpr/requests?customer_id={world.customer_id}", headers=tenant.headers
    ).json["data"]
    assert [(r["kind"], r["state"]) for r in requests] == [("access", "completed")]
    assert requests[0]["verification_method"] == "portal_session"
    download = client.post(
        f"/portal/privacy/requests/{requests[0]['id']}/download", data={"csrf_token": csrf}
    )
    assert download.status_code == 303
    zip_path = urlsplit(download.headers["Location"]).path
    archive = client.get(zip_path)
    assert archive.status_code == 200 and archive.data.startswith(b"PK")
    assert client.get(zip_path).status_code in (404, 409, 410)  # the link was single-use


def test_erasure_request_is_recorded_verified_when_confirmed(
    client: FlaskClient, tenant: TenantCtx
) -> None:
    world = make_world(client, tenant)
    csrf = open_portal(client, tenant, world.customer_id, locale="en")
    page = client.get("/portal/privacy").get_data(as_text=True)
    assert "What we must keep" in page and "8 years" in page
    unconfirmed = client.post("/portal/privacy/erasure", data={"csrf_token": csrf})
    assert unconfirmed.status_code == 422
    resp = client.post("/portal/privacy/erasure", data={"csrf_token": csrf, "confirm": "1"})
    assert resp.status_code == 303
    requests = client.get(
        f"/v1/gdpr/requests?customer_id={world.customer_id}", headers=tenant.headers
    ).json["data"]
    assert [(r["kind"], r["state"]) for r in requests] == [("erasure", "in_progress")]


def test_erasure_ends_the_portal_session_when_carried_out(
    client: FlaskClient, tenant: TenantCtx
) -> None:
    world = make_world(client, tenant)
    csrf = open_portal(client, tenant, world.customer_id)
    unused = portal_link(client, tenant, world.customer_id)
    client.post("/portal/privacy/erasure", data={"csrf_token": csrf, "confirm": "1"})
    request_id = client.get(
        f"/v1/gdpr/requests?customer_id={world.customer_id}", headers=tenant.headers
    ).json["data"][0]["id"]
    done = client.post(f"/v1/gdpr/requests/{request_id}/fulfil", json={}, headers=tenant.headers)
    assert done.status_code == 200, done.json
    assert client.get("/portal/").status_code == 401
    assert client.get(urlsplit(unused["url"]).path).status_code == 401


# --- languages ----------------------------------------------------------------------------


def test_pages_are_german_when_customer_locale_is_german_and_switch_to_english(
    client: FlaskClient, tenant: TenantCtx
) -> None:
    world = make_world(client, tenant)
    csrf = open_portal(client, tenant, world.customer_id, locale="de-DE")
    html = client.get("/portal/invoices").get_data(as_text=True)
    assert "Rechnungen und Gutschriften" in html
    resp = client.post(
        "/portal/language", data={"csrf_token": csrf, "language": "en", "next": "/portal/invoices"}
    )
    assert resp.status_code == 303 and resp.headers["Location"].endswith("/portal/invoices")
    assert "Invoices and credit notes" in client.get("/portal/invoices").get_data(as_text=True)


def test_language_switch_never_redirects_off_site_when_next_is_foreign(
    client: FlaskClient, tenant: TenantCtx
) -> None:
    world = make_world(client, tenant)
    csrf = open_portal(client, tenant, world.customer_id)
    for target in ("https://evil.example/", "//evil.example/portal/", "/portal/\\evil"):
        resp = client.post(
            "/portal/language", data={"csrf_token": csrf, "language": "en", "next": target}
        )
        assert resp.headers["Location"].endswith("/portal/"), target
