"""Test doubles for the GDPR tests: a stand-in for the invoice module's provider (a document
table outside the app's metadata, files under the var dir). Payments and the deletion of
the Stripe customer are real (`compliance.providers.payments`, against localstripe).

The stand-in has the shape `compliance.providers.invoices` will have: it exports invoices with
their PDF and XML, keeps finalized documents (returned as `RetainedDocument`s, so the registry
restricts them) and redacts them once their retention has ended.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from compliance.registry import (
    DocumentRef,
    ErasureContext,
    ErasureReport,
    ExportContext,
    ExportFile,
    ExportPart,
    Provider,
    RetainedDocument,
    Subject,
)
from compliance.retention import DocumentClass
from compliance.tokens import erased_text

META = sa.MetaData()
DOCS = sa.Table(
    "test_retained_documents",
    META,
    sa.Column("tenant_id", sa.String(40), primary_key=True),
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("customer_id", sa.String(40), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),  # invoice | oss_record | draft
    sa.Column("number", sa.String(64), nullable=False),
    sa.Column("issued_on", sa.Date(), nullable=False),
    sa.Column("gross", sa.Integer(), nullable=False),
    sa.Column("buyer", sa.Text(), nullable=False),  # the frozen snapshot's buyer, JSON
)
CLASSES = {"invoice": DocumentClass.INVOICE, "oss_record": DocumentClass.OSS_RECORD}


@dataclass
class DocumentStore:
    root: Path  # <var>/documents/<tenant>/<id>.pdf|.xml

    def files(self, tenant_id: str, doc_id: str) -> list[Path]:
        return [self.root / tenant_id / f"{doc_id}.{ext}" for ext in ("pdf", "xml")]

    def add(
        self,
        session: Session,
        tenant_id: str,
        customer: dict[str, Any],
        *,
        doc_id: str,
        kind: str,
        issued_on: date,
    ) -> None:
        buyer = {
            "name": customer["name"],
            "email": customer["email"],
            "address": customer["address"],
            "vat_id": customer.get("vat_id"),
        }
        session.execute(
            DOCS.insert().values(
                tenant_id=tenant_id,
                id=doc_id,
                customer_id=customer["id"],
                kind=kind,
                number=f"RE-{issued_on.year}-{doc_id[-3:]}",
                issued_on=issued_on,
                gross=11900,
                buyer=json.dumps(buyer),
            )
        )
        for path in self.files(tenant_id, doc_id):
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(
                f"%{path.suffix} for {customer['name']} <{customer['email']}>".encode()
            )

    def provider(self) -> Provider:
        def _rows(session: Session, subject: Subject) -> list[Any]:
            return list(
                session.execute(
                    sa.select(DOCS).where(
                        DOCS.c.tenant_id == subject.tenant_id,
                        DOCS.c.customer_id == subject.customer_id,
                    )
                ).mappings()
            )

        def export(ctx: ExportContext) -> ExportPart:
            part = ExportPart(records={"invoices": []})
            for row in _rows(ctx.session, ctx.subject):
                buyer = json.loads(row["buyer"])
                pdf, xml = self.files(row["tenant_id"], row["id"])
                record = {
                    "invoice_id": row["id"],
                    "kind": row["kind"],
                    "number": row["number"],
                    "status": "paid",
                    "issue_date": row["issued_on"],
                    "currency": "EUR",
                    "net_amount": 10000,
                    "tax_amount": 1900,
                    "gross_amount": row["gross"],
                    "seller_name": "Muster GmbH",
                    "buyer": {
                        "name": buyer["name"],
                        "address": {
                            "use": "billing",
                            "line2": None,
                            "state": None,
                            **buyer["address"],
                        }
                        if buyer["address"]
                        else None,
                        "vat_id": buyer["vat_id"],
                    },
                    "restricted": False,
                    "retention_ends_on": None,
                    "pdf_file": None,
                    "xml_file": None,
                    "sha256": None,
                }
                if pdf.exists():
                    record["pdf_file"] = f"invoices/{row['id']}.pdf"
                    record["xml_file"] = f"invoices/{row['id']}.xml"
                    part.files.append(ExportFile(record["pdf_file"], pdf.read_bytes()))
                    part.files.append(ExportFile(record["xml_file"], xml.read_bytes()))
                part.records["invoices"].append(record)
            return part

        def erase(ctx: ErasureContext) -> ErasureReport:
            report = ErasureReport()
            for row in _rows(ctx.session, ctx.subject):
                if row["kind"] == "draft":  # not issued: nothing keeps it
                    ctx.session.execute(
                        DOCS.delete().where(
                            DOCS.c.tenant_id == row["tenant_id"], DOCS.c.id == row["id"]
                        )
                    )
                    for path in self.files(row["tenant_id"], row["id"]):
                        path.unlink(missing_ok=True)
                    report.count("draft_deleted")
                    continue
                report.retained.append(
                    RetainedDocument(row["kind"], row["id"], CLASSES[row["kind"]], row["issued_on"])
                )
            return report

        def redact(session: Session, ref: DocumentRef, now: Any) -> dict[str, int]:
            tenant_id = session.info["abowerk.tenant_id"]
            token = {"name": erased_text(), "email": None, "address": None, "vat_id": None}
            session.execute(
                DOCS.update()
                .where(DOCS.c.tenant_id == tenant_id, DOCS.c.id == ref.document_id)
                .values(buyer=json.dumps(token))
            )
            deleted = 0
            for path in self.files(tenant_id, ref.document_id):
                if path.exists():
                    path.unlink()
                    deleted += 1
            return {"buyer_redacted": 1, "files_deleted": deleted}

        return Provider(
            name="stand_in_invoices",
            covers=frozenset(),
            purpose="invoicing (§ 14 UStG), kept for § 147 AO",
            retention="8 years from the end of the issue year (OSS records 10)",
            export=export,
            erase=erase,
            categories=("invoices",),
            redact_document=redact,
            document_types=("invoice", "oss_record"),
            order=20,
        )


def create_tables(engine: sa.Engine) -> None:
    META.create_all(engine, checkfirst=True)


def drop_tables(engine: sa.Engine) -> None:
    META.drop_all(engine, checkfirst=True)


def iter_files(root: Path) -> Iterator[Path]:
    if root.exists():
        yield from (p for p in sorted(root.rglob("*")) if p.is_file())
