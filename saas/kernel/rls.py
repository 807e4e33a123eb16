"""PostgreSQL row-level security for tenant-owned tables, used by the migrations.

The policy compares `tenant_id` with the transaction-local setting `abowerk.tenant_id` that
the session sets at the start of every transaction (`saas.kernel.tenancy`). An unset setting
is NULL or '', which matches no row: without a tenant the app role sees nothing.

Credential tables get one more SELECT-only policy, open while `abowerk.auth_lookup` is on:
authentication must find a key by its hash before it knows the tenant, and that one vetted
query (`saas.auth.services._lookup_unscoped`) switches it on for a single statement.
"""

from __future__ import annotations

import os
from typing import Any

# The migrations create and grant the role the app switches to; both read the same setting.
APP_ROLE = os.environ.get("ABOWERK_DB_APP_ROLE") or "abowerk_app"
TENANT_CONDITION = "tenant_id = current_setting('abowerk.tenant_id', true)"


def create_app_role(op: Any) -> None:
    op.execute(
        f"""
        DO $$
        BEGIN
            IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{APP_ROLE}') THEN
                CREATE ROLE {APP_ROLE} NOLOGIN NOSUPERUSER NOBYPASSRLS;
            END IF;
        END
        $$;
        """
    )
    # the login role must be allowed to SET ROLE to the app role (no-op for a superuser)
    op.execute(f"GRANT {APP_ROLE} TO CURRENT_USER")
    op.execute(f"GRANT USAGE ON SCHEMA public TO {APP_ROLE}")
    op.execute(
        f"ALTER DEFAULT PRIVILEGES IN SCHEMA public "
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {APP_ROLE}"
    )
    op.execute(
        f"ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO {APP_ROLE}"
    )


def grant_existing(op: Any) -> None:
    op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {APP_ROLE}")
    op.execute(f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {APP_ROLE}")


def enable_tenant_rls(op: Any, table: str, *, auth_lookup: bool = False) -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
    op.execute(
        f"CREATE POLICY tenant_isolation ON {table} "
        f"USING ({TENANT_CONDITION}) WITH CHECK ({TENANT_CONDITION})"
    )
    if auth_lookup:
        op.execute(
            f"CREATE POLICY auth_lookup ON {table} FOR SELECT "
            f"USING (current_setting('abowerk.auth_lookup', true) = 'on')"
        )


def disable_tenant_rls(op: Any, table: str) -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(f"DROP POLICY IF EXISTS auth_lookup ON {table}")
    op.execute(f"DROP POLICY IF EXISTS tenant_isolation ON {table}")
    op.execute(f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY")
