"""The customer portal in Chromium: a customer opens the link their seller's application
got from `POST /v1/portal/sessions`, upgrades with the proration preview, downloads an
invoice, enters an invalid and then a valid VAT ID, exports their data and asks for erasure.
And what an attacker would try: another customer's or tenant's ids, a form without its CSRF
token, an old link."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from playwright.sync_api import expect

from tests.api.test_portal import World, make_world, portal_link
from tests.browser.conftest import Site, screenshot


def _open(site: Site, page: Any, world: World, tenant: Any, **fields: Any) -> None:
    link = portal_link(site.client(), tenant, world.customer_id, **fields)
    page.goto(site.base_url + urlsplit(link["url"]).path)
    expect(page).to_have_url(re.compile(r"/portal/$"))


def test_customer_manages_subscription_invoices_vat_id_and_privacy_when_in_the_portal(
    site: Site, page: Any
) -> None:
    tenant = site.tenant("Beispiel Software GmbH")
    world = make_world(site.client(), tenant)
    back = f"{site.base_url}/healthz"  # stands in for the seller's application
    _open(site, page, world, tenant, locale="en", return_url=back)

    # overview: plan, next invoice with VAT as the tax engine decides it
    expect(page.get_by_role("heading", name="Starter")).to_be_visible()
    expect(page.get_by_test_id("next-invoice")).to_contain_text("€22.61")
    expect(page.get_by_test_id("next-invoice")).to_contain_text("VAT €3.61")
    screenshot(page, "portal-overview")
    page.keyboard.press("Tab")  # keyboard users reach the skip link first
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"

    # upgrade with the proration preview
    page.get_by_role("link", name="Change plan or quantity").click()
    page.get_by_label("Pro — €49.00 / month").check()
    page.get_by_role("button", name="Show the price of the change").click()
    expect(page.get_by_role("heading", name="Confirm the change")).to_be_visible()
    proration = page.get_by_test_id("proration")
    expect(proration).to_contain_text("Pro")
    total = page.get_by_test_id("proration-total").inner_text()
    assert total.startswith("€") and total != "€0.00"
    expect(page.get_by_test_id("proration-gross")).to_have_text(re.compile(r"^€\d+\.\d\d$"))
    screenshot(page, "portal-proration-preview")
    page.get_by_role("button", name="Confirm change").click()
    expect(page.get_by_role("status")).to_have_text("Your plan has been changed.")
    expect(page.get_by_role("heading", name="Pro")).to_be_visible()

    # invoices: download the PDF
    page.get_by_role("link", name="Invoices", exact=True).click()
    expect(page.get_by_role("cell", name=world.invoice["number"], exact=True)).to_be_visible()
    screenshot(page, "portal-invoices")
    with page.expect_download() as download_info:
        page.get_by_role("link", name=f"PDF {world.invoice['number']}").click()
    pdf = download_info.value
    assert pdf.suggested_filename == f"{world.invoice['number']}.pdf"
    with open(pdf.path(), "rb") as fh:
        assert fh.read(5) == b"%PDF-"

    # billing details: an invalid VAT ID, then a valid one (syntax at once, then VIES)
    page.get_by_role("link", name="Billing details").click()
    page.get_by_label("Country (two letters, e.g. DE)").fill("AT")
    vat_id = page.get_by_label("VAT ID (optional)")
    feedback = page.locator("#vat_id-feedback")
    vat_id.fill("ATU1234")
    expect(feedback).to_have_text("This is not a valid VAT ID.")
    expect(vat_id).to_have_attribute("aria-invalid", "true")
    assert "ATU1234" not in site.vies.asked  # a malformed number never reaches the register
    vat_id.fill("ATU13585627")
    expect(feedback).to_have_text("VIES confirms this VAT ID.")
    screenshot(page, "portal-billing-details")
    page.get_by_label("I am buying as a business").check()
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("status").first).to_contain_text("Saved.")
    customer = site.client().get(f"/v1/customers/{world.customer_id}", headers=tenant.headers)
    assert customer.json["vat_id"] == "ATU13585627"
    assert customer.json["vat_id_check"]["status"] == "valid"

    # payment: the seller's bank account
    page.get_by_role("link", name="Payment").click()
    expect(page.get_by_test_id("iban")).to_have_text("DE89370400440532013000")

    # privacy: export and download it, then ask for erasure
    page.get_by_role("link", name="Privacy").click()
    page.get_by_role("button", name="Request an export").click()
    expect(page.get_by_role("status")).to_contain_text("Your export is ready")
    with page.expect_download() as download_info:
        page.get_by_role("button", name="Download").click()
    export = download_info.value
    assert export.suggested_filename.endswith(".zip")
    with open(export.path(), "rb") as fh:
        assert fh.read(2) == b"PK"
    expect(page.get_by_text("What we must keep")).to_be_visible()
    page.get_by_label("I want my data erased").check()
    page.get_by_role("button", name="Request erasure").click()
    expect(page.get_by_role("status")).to_contain_text("erasure request")
    screenshot(page, "portal-privacy")
    kinds = [
        (r["kind"], r["state"])
        for r in site.client()
        .get(f"/v1/gdpr/requests?customer_id={world.customer_id}", headers=tenant.headers)
        .json["data"]
    ]
    assert kinds == [("erasure", "in_progress"), ("access", "completed")]

    # back to the seller's application
    page.get_by_role("button", name="Back to").click()
    expect(page).to_have_url(back)


def test_portal_is_german_and_fits_a_phone_when_customer_speaks_german(
    site: Site, browser: Any
) -> None:
    tenant = site.tenant("Beispiel Software GmbH")
    world = make_world(site.client(), tenant)
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    try:
        phone = context.new_page()
        _open(site, phone, world, tenant, locale="de-DE")
        expect(phone.get_by_role("link", name="Rechnungen", exact=True)).to_be_visible()
        expect(phone.get_by_test_id("next-invoice")).to_contain_text("22,61")
        width = phone.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, "the page scrolls sideways on a phone"
        screenshot(phone, "portal-phone-de")
        phone.get_by_label("Sprache").select_option("en")
        phone.get_by_role("button", name="Wechseln").click()
        expect(phone.get_by_role("link", name="Invoices", exact=True)).to_be_visible()
    finally:
        context.close()


def test_tampered_urls_foreign_forms_and_old_links_are_refused_when_tried_in_the_browser(
    site: Site, page: Any
) -> None:
    tenant = site.tenant("Beispiel Software GmbH")
    other_tenant = site.tenant("Andere AG")
    mine = make_world(site.client(), tenant)
    neighbour = make_world(site.client(), tenant)
    foreign = make_world(site.client(), other_tenant)
    link = portal_link(site.client(), tenant, mine.customer_id, locale="en")
    start = site.base_url + urlsplit(link["url"]).path
    page.goto(start)
    expect(page).to_have_url(re.compile(r"/portal/$"))

    for invoice in (neighbour.invoice, foreign.invoice):
        response = page.goto(f"{site.base_url}/portal/invoices/{invoice['id']}.pdf")
        assert response is not None and response.status == 404
        expect(page.get_by_role("heading", name="Not found")).to_be_visible()
    response = page.goto(f"{site.base_url}/portal/subscriptions/{foreign.subscription['id']}/plan")
    assert response is not None and response.status == 404

    # a form posted without its CSRF token (as a foreign page would): 400, nothing changes
    page.goto(f"{site.base_url}/portal/")
    status = page.evaluate(
        """async (url) => (await fetch(url, {method: "POST", body: new URLSearchParams(
               {reason: "other"})})).status""",
        f"{site.base_url}/portal/subscriptions/{mine.subscription['id']}/cancel",
    )
    assert status == 400
    sub = site.client().get(f"/v1/subscriptions/{mine.subscription['id']}", headers=tenant.headers)
    assert sub.json["cancel_at_period_end"] is False

    # the link worked once; opening it again is refused, also in a fresh browser
    response = page.goto(start)
    assert response is not None and response.status == 401
    expect(
        page.get_by_role("heading", name="This link or session is no longer valid")
    ).to_be_visible()
    screenshot(page, "portal-link-refused")
