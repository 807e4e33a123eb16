"""reliability: one-round-trip authentication for the app role

Authentication used to find a credential by its hash through an extra row-level security
policy (`auth_lookup`) that the app role opened and closed around the query with two
`set_config` calls: four round trips before a request knew its tenant, and a policy under
which the app role could read every tenant's credential rows while it was open.

Two `SECURITY DEFINER` functions replace both. Each looks up one credential by its exact
secret hash (API keys) or client id (OAuth clients), sets the transaction-local tenant
(`abowerk.tenant_id`) to the credential's tenant, and returns the one row: a single round
trip, and the app role can no longer list credentials of other tenants at all. They run as
the schema owner (which row-level security does not bind, as the table owner), with a fixed
`search_path` so that nobody can slip in a table or function of the same name; only the app
role may execute them. PostgreSQL only: SQLite has no roles or row-level security.

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-21 09:00:00.000000

"""

from alembic import op

from saas.kernel import rls

# revision identifiers, used by Alembic.
revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

API_KEY_FUNCTION = """
CREATE FUNCTION abowerk_find_api_key(p_secret_hash text)
RETURNS TABLE (
    tenant_id varchar, id varchar, livemode boolean, scopes json,
    revoked_at timestamptz, expires_at timestamptz, last_used_at timestamptz,
    tenant_status varchar
)
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    hit record;
BEGIN
    SELECT k.tenant_id, k.id, k.livemode, k.scopes, k.revoked_at, k.expires_at,
           k.last_used_at, t.status
      INTO hit
      FROM public.api_keys k JOIN public.tenants t ON t.id = k.tenant_id
     WHERE k.secret_hash = p_secret_hash
     LIMIT 1;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    -- transaction-local, like every tenant setting: it ends with the request's transaction
    PERFORM set_config('abowerk.tenant_id', hit.tenant_id, true);
    RETURN QUERY SELECT hit.tenant_id, hit.id, hit.livemode, hit.scopes,
        hit.revoked_at, hit.expires_at, hit.last_used_at, hit.status;
END
$$
"""

OAUTH_CLIENT_FUNCTION = """
CREATE FUNCTION abowerk_find_oauth_client(p_client_id text)
RETURNS TABLE (tenant_id varchar, id varchar)
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    hit record;
BEGIN
    SELECT c.tenant_id, c.id INTO hit
      FROM public.oauth_clients c
     WHERE c.client_id = p_client_id
     LIMIT 1;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    PERFORM set_config('abowerk.tenant_id', hit.tenant_id, true);
    RETURN QUERY SELECT hit.tenant_id, hit.id;
END
$$
"""

FUNCTIONS = ("abowerk_find_api_key(text)", "abowerk_find_oauth_client(text)")
CREDENTIAL_TABLES = ("api_keys", "oauth_clients")


def upgrade():
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(API_KEY_FUNCTION)
    op.execute(OAUTH_CLIENT_FUNCTION)
    for function in FUNCTIONS:
        op.execute(f"REVOKE ALL ON FUNCTION {function} FROM PUBLIC")
        op.execute(f"GRANT EXECUTE ON FUNCTION {function} TO {rls.APP_ROLE}")
    # the functions are now the only way to find a credential without knowing its tenant
    for table in CREDENTIAL_TABLES:
        op.execute(f"DROP POLICY IF EXISTS auth_lookup ON {table}")


def downgrade():
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in CREDENTIAL_TABLES:
        op.execute(
            f"CREATE POLICY auth_lookup ON {table} FOR SELECT "
            f"USING (current_setting('abowerk.auth_lookup', true) = 'on')"
        )
    for function in FUNCTIONS:
        op.execute(f"DROP FUNCTION IF EXISTS {function}")
