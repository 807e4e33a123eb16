"""The outbox's GDPR provider: the mails sent to a person are exported; on erasure the unsent
ones are deleted, the sent ones keep no personal data, and open dunning cases stop."""

from __future__ import annotations

import io
import json
import zipfile
from datetime import UTC, datetime

import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from compliance.exports import build_export
from compliance.providers import load, mail_outbox
from compliance.registry import ErasureContext, ExportContext, Registry, Subject
from compliance.tokens import is_erased_email
from saas.extensions import db
from saas.kernel.tasks import tenant_session
from saas.mail.models import OutboxMail
from saas.mail.sender import deliver_pending
from tests.api.test_invoices import CUSTOMERS
from tests.conftest import TenantCtx
from tests.integration.test_dunning import ScriptedCollector, make_dunned
from tests.integration.test_mail import settings_for
from tests.support.smtp import SmtpServer

NOW = datetime(2026, 11, 21, 10, 0, tzinfo=UTC)
EMAIL = CUSTOMERS["de_business"]["email"]
NAME = CUSTOMERS["de_business"]["name"]


def test_sent_mails_are_exported_and_redacted_and_unsent_deleted_when_person_is_erased(
    client: FlaskClient, app: Flask, tenant: TenantCtx
) -> None:
    d = make_dunned(client, app, tenant)
    d.fail_payment()  # the "payment failed" mail
    with SmtpServer() as smtp, app.app_context():
        assert deliver_pending(db.engine, tenant.tenant_id, settings_for(smtp), now=NOW).sent == 1
    d.advance(d.now.replace(day=d.now.day + 1, minute=5))
    d.run_retries(ScriptedCollector())  # the first retry fails: a reminder, not sent yet
    assert [m.status for m in d.mails()] == ["sent", "pending"]

    subject = Subject(tenant.tenant_id, d.customer_id, False, EMAIL, (EMAIL, NAME))
    with app.app_context(), tenant_session(db.engine, tenant.tenant_id) as session:
        part = mail_outbox.export(ExportContext(session, subject, NOW, ()))
        [file] = part.files
        exported = json.loads(file.content)
        assert file.path.startswith("emails/mail_") and file.path.endswith(".json")
        assert exported["to"] == EMAIL and exported["subject"].startswith("[TEST] Zahlung")
        assert NAME in exported["text"] and exported["sent_at"]

        report = mail_outbox.erase(ErasureContext(session, subject, NOW, "system", None, ()))
        session.commit()
        assert report.actions == {
            "dunning_case_closed": 1,
            "unsent_mail_deleted": 1,
            "sent_mail_redacted": 1,
        }
        [kept] = session.scalars(sa.select(OutboxMail)).all()
        assert kept.status == "sent" and is_erased_email(kept.to_address)
        assert kept.text_body == "[redacted]" and NAME not in kept.subject
        dump = json.dumps([kept.to_address, kept.subject, kept.text_body, kept.html_body])
        assert EMAIL not in dump and NAME not in dump
    assert d.case().status == "closed"
    assert {a.status for a in d.attempts()} == {"failed", "canceled"}
    collector = ScriptedCollector()
    d.advance(d.now.replace(day=d.now.day + 7))
    assert d.run_retries(collector) == {} and collector.calls == []


def test_export_zip_carries_the_mails_when_an_access_request_is_fulfilled(
    client: FlaskClient, app: Flask, tenant: TenantCtx
) -> None:
    """Through the registry and the archive builder: the mail files land in the ZIP."""
    d = make_dunned(client, app, tenant)
    d.fail_payment()
    with SmtpServer() as smtp, app.app_context():
        deliver_pending(db.engine, tenant.tenant_id, settings_for(smtp), now=NOW)
    registry = load(Registry())
    with app.app_context(), tenant_session(db.engine, tenant.tenant_id) as session:
        subject = registry.resolve(session, d.customer_id)
        assert subject is not None
        ctx = ExportContext(session, subject, NOW, ())
        parts = [(p, p.export(ctx)) for p in registry.providers() if p.export is not None]
    built = build_export(
        parts,
        request_id="gdpr_test",
        request_kind="access",
        generated_at=NOW,
        controller="Muster GmbH",
        processor="abowerk",
        subject={"customer_id": d.customer_id},
    )
    archive = zipfile.ZipFile(io.BytesIO(built.content))
    [path] = [n for n in archive.namelist() if n.startswith("emails/")]
    assert json.loads(archive.read(path))["to"] == EMAIL
    assert path in {f["path"] for f in built.manifest["files"]}
