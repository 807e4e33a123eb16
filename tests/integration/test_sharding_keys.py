"""Sharding readiness: the migrated schema can be distributed by `tenant_id` (Citus) unchanged.

Citus places every row of a distributed table on the shard its distribution column hashes to.
It can only enforce a primary key or unique constraint that contains that column, and only a
foreign key between colocated tables that matches the distribution columns on both sides, so
that the referenced row is always on the same shard. Global tables become reference tables
(a copy on every node): distributed tables may point at them, never the other way round.

These rules are checked on the schema the migrations build (reflected from the database,
SQLite and PostgreSQL alike), not on the models, because the migrations are what production
runs. docs/operations.md, "Sharding with Citus", is the procedure that relies on them.
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from flask import Flask

from saas.extensions import db

TENANT = "tenant_id"
# Global tables: platform bookkeeping and reference data, identical for every tenant. Future
# reference tables (VAT rates, currencies) are added here, and must not point at tenant data.
GLOBAL_TABLES = frozenset({"tenants", "alembic_version"})


@pytest.fixture(scope="module")
def schema(app: Flask) -> dict[str, sa.Table]:
    with app.app_context():
        meta = sa.MetaData()
        meta.reflect(bind=db.engine)
        return dict(meta.tables)


def _tenant_owned(schema: dict[str, sa.Table]) -> dict[str, sa.Table]:
    return {name: t for name, t in schema.items() if name not in GLOBAL_TABLES}


def test_only_allow_listed_tables_lack_tenant_id_when_migrated(
    schema: dict[str, sa.Table],
) -> None:
    assert "customers" in schema  # the reflection saw the migrated schema, not an empty one
    missing = sorted(name for name, table in _tenant_owned(schema).items() if TENANT not in table.c)
    assert missing == [], f"tables without tenant_id that are not allow-listed: {missing}"
    for name in GLOBAL_TABLES - {"alembic_version"}:
        assert name in schema, f"allow-listed global table {name} does not exist"


def test_tenant_id_is_not_null_and_leads_the_primary_key_when_migrated(
    schema: dict[str, sa.Table],
) -> None:
    problems = []
    for name, table in sorted(_tenant_owned(schema).items()):
        if TENANT not in table.c:
            continue  # reported by the test above
        if table.c[TENANT].nullable:
            problems.append(f"{name}.tenant_id is nullable")
        pk = [c.name for c in table.primary_key.columns]
        if not pk or pk[0] != TENANT:
            problems.append(f"{name}: primary key {pk} does not start with tenant_id")
    assert problems == []


def test_every_unique_key_of_a_tenant_table_includes_tenant_id_when_migrated(
    schema: dict[str, sa.Table],
) -> None:
    problems = []
    for name, table in sorted(_tenant_owned(schema).items()):
        uniques = [
            [c.name for c in constraint.columns]
            for constraint in table.constraints
            if isinstance(constraint, sa.UniqueConstraint)
        ]
        # unique indexes are unique keys too (PostgreSQL reflects some only as indexes)
        uniques += [[c.name for c in index.columns] for index in table.indexes if index.unique]
        problems += [
            f"{name}: unique {cols} lacks tenant_id" for cols in uniques if TENANT not in cols
        ]
    assert problems == []


def _pairs(fk: sa.ForeignKeyConstraint) -> list[tuple[str, str, str]]:
    """(local column, referred table, referred column) for each column of the key."""
    return [(e.parent.name, e.column.table.name, e.column.name) for e in fk.elements]


def test_foreign_keys_between_tenant_tables_carry_tenant_id_on_both_sides_when_migrated(
    schema: dict[str, sa.Table],
) -> None:
    owned = _tenant_owned(schema)
    problems = []
    checked = 0
    for name, table in sorted(owned.items()):
        for fk in table.foreign_key_constraints:
            pairs = _pairs(fk)
            referred = fk.referred_table.name
            if referred in owned:
                checked += 1
                # tenant_id must meet tenant_id: then both rows are on the same shard
                if (TENANT, referred, TENANT) not in pairs:
                    problems.append(f"{name} -> {referred} {pairs}: tenant_id not matched")
            elif referred == "tenants" and pairs != [(TENANT, "tenants", "id")]:
                problems.append(f"{name} -> tenants {pairs}: not by tenant_id")
    assert problems == []
    assert checked > 0  # the schema does have such keys (subscriptions -> customers, ...)


def test_every_tenant_table_references_its_tenant_when_migrated(
    schema: dict[str, sa.Table],
) -> None:
    """The tenant_id column is a real foreign key to `tenants`, not just a string."""
    unreferenced = sorted(
        name
        for name, table in _tenant_owned(schema).items()
        if not any(
            _pairs(fk) == [(TENANT, "tenants", "id")] for fk in table.foreign_key_constraints
        )
    )
    assert unreferenced == []


def test_global_tables_never_reference_tenant_tables_when_migrated(
    schema: dict[str, sa.Table],
) -> None:
    # Citus allows distributed -> reference foreign keys only, never reference -> distributed
    owned = _tenant_owned(schema)
    problems = [
        f"{name} -> {fk.referred_table.name}"
        for name in sorted(GLOBAL_TABLES & schema.keys())
        for fk in schema[name].foreign_key_constraints
        if fk.referred_table.name in owned
    ]
    assert problems == []
