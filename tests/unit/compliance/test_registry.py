"""The provider registry: every classified column is covered; the core imports no provider."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import sqlalchemy as sa

import saas.models  # noqa: F401  (every table on the metadata)
from compliance import providers
from compliance.registry import (
    SUBJECT_TENANT_CONTACT,
    DuplicateProviderError,
    Provider,
    Registry,
    classified_columns,
    columns,
    stale_covers,
    uncovered_columns,
)
from saas.kernel.db import Base

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def loaded() -> Registry:
    return providers.load(Registry())


def test_every_personal_data_column_is_covered_when_providers_are_loaded(loaded: Registry) -> None:
    assert "customers.email" in classified_columns(Base.metadata)
    missing = uncovered_columns(Base.metadata, loaded)
    assert not missing, (
        f"columns classified as personal data without a provider: {missing}; register one "
        "in the owning package (or compliance.providers) with an exporter and an eraser"
    )


def test_no_provider_covers_a_column_that_is_not_classified_when_loaded(loaded: Registry) -> None:
    assert stale_covers(Base.metadata, loaded) == []


def test_new_table_with_personal_data_is_reported_when_no_provider_covers_it(
    loaded: Registry,
) -> None:
    meta = sa.MetaData()
    sa.Table(
        "loyalty_cards",
        meta,
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("holder_name", sa.String(200), info={"personal_data": True}),
        sa.Column("points", sa.Integer()),
    )
    assert uncovered_columns(meta, loaded) == ["loyalty_cards.holder_name"]
    loaded.register(
        Provider(
            name="loyalty",
            covers=columns("loyalty_cards", ["holder_name"]),
            purpose="loyalty programme",
            retention="while a member",
        )
    )
    assert uncovered_columns(meta, loaded) == []


def test_providers_run_in_their_order_when_listed(loaded: Registry) -> None:
    names = [p.name for p in loaded.providers()]
    assert names[0] == "subscriptions"  # active subscriptions are cancelled first
    assert names[-1] == "customers"  # the customer's values are replaced last
    assert all(p.subject_kind != SUBJECT_TENANT_CONTACT for p in loaded.providers())
    assert "seller_profiles" in [p.name for p in loaded.providers(None)]


def test_second_provider_with_same_name_is_refused_when_registered(loaded: Registry) -> None:
    other = Provider(name="customers", covers=frozenset(), purpose="x", retention="y")
    with pytest.raises(DuplicateProviderError):
        loaded.register(other)
    providers.load(loaded)  # loading the same providers again is harmless


def test_temporarily_registered_provider_is_gone_when_block_ends(loaded: Registry) -> None:
    extra = Provider(name="extra", covers=frozenset(), purpose="x", retention="y")
    before = loaded.payment_deleters()
    assert [n for n, _ in before] == ["stripe"]  # the payments module's
    with loaded.temporarily(extra, payment_deleters={"fake": lambda s, subj: []}):
        assert loaded.provider("extra") is extra
        assert [n for n, _ in loaded.payment_deleters()] == ["fake", "stripe"]
    assert loaded.provider("extra") is None
    assert loaded.payment_deleters() == before


def test_registered_deleter_is_back_when_a_stand_in_block_ends(loaded: Registry) -> None:
    [(name, original)] = loaded.payment_deleters()
    stand_in = lambda s, subj: []  # noqa: E731
    with loaded.temporarily(payment_deleters={name: stand_in}):
        assert loaded.payment_deleters() == [(name, stand_in)]
    assert loaded.payment_deleters() == [(name, original)]


# Modules of compliance's core may use the kernel, the outbox, tenants, test clock time and
# pagination; never the packages that register providers (those are reached only through
# the registry, and their adapters live in compliance.providers).
ALLOWED_SAAS = ("saas.kernel", "saas.events.services", "saas.tenants", "saas.testclocks.queries")
ALLOWED_SAAS += ("saas.kernel.pagination",)


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


@pytest.mark.parametrize(
    "path",
    sorted((ROOT / "compliance").glob("*.py")),
    ids=lambda p: p.name,
)
def test_core_module_imports_no_provider_package_when_parsed(path: Path) -> None:
    for module in _imports(path):
        if module.startswith(("billing", "compliance.providers", "flask")):
            pytest.fail(f"{path.name} imports {module}")
        if module.startswith("saas.") and not module.startswith(ALLOWED_SAAS):
            pytest.fail(f"{path.name} imports {module}: compliance's core imports no provider")


def test_invoice_provider_keeps_and_redacts_invoices_when_loaded(loaded: Registry) -> None:
    provider = loaded.provider_for_document("invoice")
    assert provider is not None
    assert provider.name == "invoices"
    assert provider.redact_document is not None
    assert "invoices" in provider.categories
    # docs/invoicing.md lists where the buyer's data lives
    assert {"invoices.snapshot_json", "invoice_documents.content"} <= provider.covers
