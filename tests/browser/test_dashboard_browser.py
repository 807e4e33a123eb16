"""The tenant dashboard in Chromium: a staff member signs in with password and TOTP, sees
the MRR chart and opens a GDPR request with its deadline."""

from __future__ import annotations

import re
import time
from typing import Any
from urllib.parse import urlsplit

from playwright.sync_api import expect

from saas.dashboard import totp
from tests.api.test_portal import make_world, portal_link
from tests.browser.conftest import Site, screenshot
from tests.integration.test_dashboard import PASSWORD


def _staff(site: Site, tenant_id: str, role: str) -> tuple[str, str, str]:
    import json
    from urllib.parse import parse_qs

    email = f"{role}@beispiel.example"
    result = site.app.test_cli_runner().invoke(
        args=["staff", "create", "--tenant", tenant_id, "--email", email, "--role", role,
              "--password-stdin", "--json"],
        input=PASSWORD + "\n",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    secret = parse_qs(urlsplit(out["totp_uri"]).query)["secret"][0]
    return out["workspace"], email, secret


def test_staff_signs_in_with_totp_sees_mrr_and_opens_a_gdpr_request_when_using_the_dashboard(
    site: Site, page: Any
) -> None:
    tenant = site.tenant("Beispiel Software GmbH")
    client = site.client()
    world = make_world(client, tenant)
    # some business: a second customer, an upgrade, and an erasure request from the portal
    second = make_world(client, tenant)
    pro = world.shop.price_id("pro")
    resp = client.post(
        f"/v1/subscriptions/{second.subscription['id']}/change",
        json={"price_id": pro},
        headers=tenant.headers,
    )
    assert resp.status_code == 200, resp.json
    link = portal_link(client, tenant, world.customer_id, locale="en")
    portal = page.context.browser.new_context()
    try:
        customer = portal.new_page()
        customer.goto(site.base_url + urlsplit(link["url"]).path)
        customer.get_by_role("link", name="Privacy").click()
        customer.get_by_label("I want my data erased").check()
        customer.get_by_role("button", name="Request erasure").click()
        expect(customer.get_by_role("status")).to_contain_text("erasure request")
    finally:
        portal.close()
    workspace, email, secret = _staff(site, tenant.tenant_id, "read_only")

    page.goto(f"{site.base_url}/dashboard/login?workspace={workspace}")
    page.get_by_label("E-mail address").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    screenshot(page, "dashboard-login")
    page.get_by_role("button", name="Continue").click()
    page.get_by_label("The 6-digit code from your authenticator app").fill(
        totp.code_at(secret, time.time())
    )
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Monthly recurring revenue")).to_be_visible()

    page.get_by_role("button", name="View test data").click()  # the suite's keys are test-mode
    expect(page.get_by_text("test data", exact=True)).to_be_visible()
    expect(page.get_by_test_id("mrr")).to_have_text("€68.00")  # Starter 19 + Pro 49
    chart = page.get_by_alt_text(re.compile("MRR over the last 12 months"))
    expect(chart).to_be_visible()
    # the pictures are drawn on request (matplotlib): wait until the browser decoded both
    page.wait_for_function(
        "() => [...document.querySelectorAll('img.chart')]"
        ".every((img) => img.complete && img.naturalWidth > 0)"
    )
    screenshot(page, "dashboard-mrr")

    page.get_by_role("link", name="GDPR requests").click()
    page.get_by_role("link", name=re.compile("^dsr_")).first.click()
    expect(page.get_by_role("heading", name="Erasure request")).to_be_visible()
    expect(page.get_by_test_id("state")).to_have_text("in progress")
    expect(page.get_by_test_id("deadline")).to_contain_text("days left")
    expect(page.get_by_text("Your role is read-only.")).to_be_visible()
    screenshot(page, "dashboard-gdpr-request")

    page.get_by_role("link", name="OSS & thresholds").click()
    expect(page.get_by_test_id("thresholds")).to_contain_text("eu b2c services")
    screenshot(page, "dashboard-oss-thresholds")

    page.get_by_role("link", name="Invoices").click()
    expect(page.get_by_role("cell", name=world.invoice["number"], exact=True)).to_be_visible()
    screenshot(page, "dashboard-invoices")
