"""The registry of personal-data providers.

Every module that stores personal data of a tenant's customers registers a provider here: the
columns it covers, an exporter (Art. 15, 20 GDPR), an eraser (Art. 17) with its retention rule,
and, for documents that tax law makes it keep, a redactor that the retention sweeper calls once
their period has ended. Payment providers (Stripe) register a *payment customer deleter*: the
erasure asks each to delete the person's customer record there and records the answer.

`compliance` imports none of the packages that register: they call `registry.register(...)`.
(The adapters for packages that existed before this registry live in `compliance.providers`
and are loaded by the shell; they may move into their packages later.)

Columns are classified in the models, `mapped_column(..., info={"personal_data": True})`, and
`uncovered_columns` lists every classified column that no provider covers, so a new table
with personal data fails the test suite until somebody says how to export and erase it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from compliance.retention import DocumentClass

SUBJECT_CUSTOMER = "customer"  # a tenant's customer: the data subject of the requests here
SUBJECT_TENANT_CONTACT = "tenant_contact"  # the seller's own staff: handled with the tenant


def is_personal(column: sa.Column[Any]) -> bool:
    return bool(column.info.get("personal_data"))


@dataclass(frozen=True, slots=True)
class Subject:
    """The person a request is about, as the subject resolver found them.

    `identifiers` are the plaintext values (e-mail, name, street, VAT ID, …) that erasers look
    for in free-form stores (event payloads, webhook responses). Never log them.
    """

    tenant_id: str
    customer_id: str
    livemode: bool
    email: str
    identifiers: tuple[str, ...]
    test_clock_id: str | None = None


@dataclass(frozen=True, slots=True)
class ExportContext:
    session: Session
    subject: Subject
    now: datetime
    hmac_keys: tuple[bytes, ...]  # to find audit entries by the HMAC of the e-mail address


@dataclass(frozen=True, slots=True)
class ExportFile:
    path: str  # inside the ZIP, e.g. "invoices/inv_….pdf"
    content: bytes


@dataclass
class ExportPart:
    """What one provider contributes: records per category (shaped for the category's export
    schema, which keeps only its declared fields) and files."""

    records: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    files: list[ExportFile] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class RetainedDocument:
    """A document an eraser kept because tax law requires it (restricted, not erased)."""

    document_type: str  # "invoice", "credit_note", "oss_record", …
    document_id: str
    document_class: DocumentClass
    issued_on: date
    # the owning module's own "keep until" (billing.invoices' retention_ends_on): the
    # restriction keeps the document at least that long, whatever the tenant's policy says
    kept_until: date | None = None


@dataclass(frozen=True, slots=True)
class ErasureContext:
    session: Session
    subject: Subject
    now: datetime
    actor: str
    request_id: str | None
    hmac_keys: tuple[bytes, ...]
    reapplying: bool = False  # after a restore: the same erasure once more


@dataclass
class ErasureReport:
    """What an eraser did, as counts under stable keys (no personal data), and what it kept."""

    actions: dict[str, int] = field(default_factory=dict)
    retained: list[RetainedDocument] = field(default_factory=list)

    def count(self, action: str, n: int = 1) -> None:
        if n:
            self.actions[action] = self.actions.get(action, 0) + n


@dataclass(frozen=True, slots=True)
class DocumentRef:
    """A restricted document whose retention has ended, handed to its provider's redactor."""

    document_type: str
    document_id: str
    customer_id: str


@dataclass(frozen=True, slots=True)
class PaymentCustomerDeletion:
    """The answer of a payment provider to "delete this person's customer record".

    `status`: `deleted`, `not_found` (nothing to delete, also a success), `no_customer` (the
    person never had one there) or `failed` (retried by `abowerk gdpr reapply-erasures`).
    `reference` is the provider's own customer id; `error` a code, never a message that could
    quote personal data.
    """

    provider: str
    status: str
    reference: str | None = None
    error: str | None = None


Exporter = Callable[[ExportContext], ExportPart]
Eraser = Callable[[ErasureContext], ErasureReport]
# returns what it did as counts, or None for "not yet" (e.g. a later document still refers
# to this one); the sweeper then tries again on its next run
DocumentRedactor = Callable[[Session, DocumentRef, datetime], dict[str, int] | None]
SubjectResolver = Callable[[Session, str], Subject | None]
PaymentCustomerDeleter = Callable[[Session, Subject], list[PaymentCustomerDeletion]]


@dataclass(frozen=True)
class Provider:
    """One module's personal data.

    - `covers`: the classified columns it answers for, as `table.column`;
    - `purpose` and `retention`: why it is stored and for how long (docs/gdpr.md's data map,
      and the access export's Art. 15(1) information);
    - `export`: contributes records to `categories`;
    - `erase`: deletes or tokenises what no retention duty covers and returns the documents it
      kept (the registry restricts them); erasers run in `order`, lowest first;
    - `redact_document`: called by the retention sweeper for `document_types` it kept.
    """

    name: str
    covers: frozenset[str]
    purpose: str
    retention: str
    export: Exporter | None = None
    erase: Eraser | None = None
    categories: tuple[str, ...] = ()
    redact_document: DocumentRedactor | None = None
    document_types: tuple[str, ...] = ()
    order: int = 50
    subject_kind: str = SUBJECT_CUSTOMER


class DuplicateProviderError(RuntimeError):
    pass


class Registry:
    def __init__(self) -> None:
        self._providers: dict[str, Provider] = {}
        self._resolver: SubjectResolver | None = None
        self._payment_deleters: dict[str, PaymentCustomerDeleter] = {}

    # --- registration -------------------------------------------------------------------

    def register(self, provider: Provider, *, replace: bool = False) -> None:
        if provider.name in self._providers and not replace:
            if self._providers[provider.name] == provider:
                return  # the same module imported twice
            raise DuplicateProviderError(f"a provider named {provider.name!r} is registered")
        self._providers[provider.name] = provider

    def unregister(self, name: str) -> None:
        self._providers.pop(name, None)

    def set_subject_resolver(self, resolver: SubjectResolver) -> None:
        """The customers module tells the registry how to find a data subject by id."""
        self._resolver = resolver

    def register_payment_customer_deleter(self, name: str, deleter: PaymentCustomerDeleter) -> None:
        """A payment provider (Stripe: `DELETE /v1/customers/{id}`) joins every erasure."""
        self._payment_deleters[name] = deleter

    def unregister_payment_customer_deleter(self, name: str) -> None:
        self._payment_deleters.pop(name, None)

    @contextmanager
    def temporarily(
        self,
        *providers: Provider,
        payment_deleters: dict[str, PaymentCustomerDeleter] | None = None,
    ) -> Iterator[Registry]:
        """Register for the duration of a block (tests, one-off scripts)."""
        for provider in providers:
            self.register(provider)
        # a stand-in may take the place of a registered deleter: put the original back after
        previous = {name: self._payment_deleters.get(name) for name in payment_deleters or {}}
        for name, deleter in (payment_deleters or {}).items():
            self.register_payment_customer_deleter(name, deleter)
        try:
            yield self
        finally:
            for provider in providers:
                self.unregister(provider.name)
            for name, before in previous.items():
                if before is None:
                    self.unregister_payment_customer_deleter(name)
                else:
                    self.register_payment_customer_deleter(name, before)

    # --- reads --------------------------------------------------------------------------

    def resolve(self, session: Session, customer_id: str) -> Subject | None:
        if self._resolver is None:
            raise RuntimeError("no subject resolver registered (load compliance.providers)")
        return self._resolver(session, customer_id)

    def providers(self, subject_kind: str | None = SUBJECT_CUSTOMER) -> list[Provider]:
        return sorted(
            (p for p in self._providers.values() if subject_kind in (None, p.subject_kind)),
            key=lambda p: (p.order, p.name),
        )

    def provider(self, name: str) -> Provider | None:
        return self._providers.get(name)

    def provider_for_document(self, document_type: str) -> Provider | None:
        for provider in self._providers.values():
            if document_type in provider.document_types:
                return provider
        return None

    def payment_deleters(self) -> list[tuple[str, PaymentCustomerDeleter]]:
        return sorted(self._payment_deleters.items())

    def covered_columns(self) -> frozenset[str]:
        return frozenset().union(*(p.covers for p in self._providers.values()))

    def providers_of_category(self, category: str) -> list[Provider]:
        return [p for p in self.providers() if category in p.categories]


def classified_columns(metadata: sa.MetaData) -> list[str]:
    return sorted(
        f"{table.name}.{column.name}"
        for table in metadata.tables.values()
        for column in table.columns
        if is_personal(column)
    )


def uncovered_columns(metadata: sa.MetaData, registry: Registry) -> list[str]:
    """Columns classified as personal data that no provider covers."""
    covered = registry.covered_columns()
    return [name for name in classified_columns(metadata) if name not in covered]


def stale_covers(metadata: sa.MetaData, registry: Registry) -> list[str]:
    """Covered names that are not (or no longer) columns of the schema: typos and renames.

    Covering a column that its model does not classify is allowed: a provider may answer for
    more than the classification asks (invoices cover their snapshot before billing
    classifies it)."""
    existing = {
        f"{table.name}.{column.name}"
        for table in metadata.tables.values()
        for column in table.columns
    }
    return sorted(name for name in registry.covered_columns() if name not in existing)


def columns(table: str, names: Iterable[str]) -> frozenset[str]:
    return frozenset(f"{table}.{name}" for name in names)


registry = Registry()
