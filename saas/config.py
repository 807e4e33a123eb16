"""Settings from the environment, with documented defaults (reference: docs/operations.md).

- ABOWERK_ENV (development): `production` makes a missing secret key fatal.
- ABOWERK_VAR_DIR (./var): embedded data, i.e. the SQLite file and the generated secret key.
- ABOWERK_DATABASE_URL (sqlite:///<VAR_DIR>/abowerk.sqlite3): PostgreSQL in production.
- ABOWERK_DB_APP_ROLE (abowerk_app): PostgreSQL role the app switches to with `SET ROLE`, so
  that row-level security applies; empty to use the login role as it is.
- ABOWERK_SECRET_KEY (generated into VAR_DIR/secret_key): signs sessions and OAuth tokens.
- ABOWERK_REDIS_URL (unset): Redis for rate limits and the task queue; memory when unset.
- ABOWERK_RATE_LIMIT (100 per second;3000 per minute): per credential.
- ABOWERK_AUTH_FAILURE_LIMIT (30 per minute): failed authentications per client IP.
- ABOWERK_MAX_BODY_BYTES (1048576): larger request bodies get 413.
- ABOWERK_OAUTH_TOKEN_TTL (3600): seconds an OAuth access token lives.
- ABOWERK_SECRET_KEY_PREVIOUS (unset): comma-separated former secret keys, still accepted for
  decrypting secrets at rest after a rotation.
- ABOWERK_TASKS_IMMEDIATE (unset): run background tasks inline (tests, debugging).
- ABOWERK_LOG_LEVEL (INFO).
- ABOWERK_METRICS_TOKEN (unset): bearer token that `/metrics` then requires.
- ABOWERK_STRIPE_API_BASE (unset: https://api.stripe.com): where the Stripe gateways send
  their requests (tests: a localstripe process).
- ABOWERK_ERASURE_LEDGER_URL (sqlite:///<VAR_DIR>/erasure-ledger.sqlite3): the GDPR erasure
  ledger, a store apart from the main database that survives its restores.
- ABOWERK_SMTP_HOST (unset): the SMTP server the worker sends the outbox's e-mails through;
  unset keeps them queued. ABOWERK_SMTP_PORT (587), ABOWERK_SMTP_USERNAME and
  ABOWERK_SMTP_PASSWORD (unset: no login), ABOWERK_SMTP_STARTTLS (true), ABOWERK_MAIL_FROM
  (abowerk@localhost): the envelope and header sender.
- ABOWERK_VIES_URL (unset: the European Commission's VIES REST endpoint): where the portal
  checks VAT IDs (tests: a local stand-in).
- ABOWERK_COOKIES_SECURE (true): portal and dashboard cookies carry `Secure`; browsers accept
  that on http://localhost too, so only a plain-HTTP server on another host needs `false`.
- ABOWERK_BILLING_SCHEDULE (*/15 * * * *): when the scheduler starts a billing run, as five
  cron fields (minute hour day month weekday, UTC).
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any


class ConfigError(RuntimeError):
    pass


@dataclass(frozen=True)
class Settings:
    env: str
    var_dir: Path
    database_url: str
    db_app_role: str
    secret_key: str
    redis_url: str | None
    rate_limit: str
    auth_failure_limit: str
    max_body_bytes: int
    oauth_token_ttl: int
    log_level: str
    previous_secret_keys: tuple[str, ...]
    tasks_immediate: bool
    metrics_token: str | None = None
    erasure_ledger_url: str | None = None
    stripe_api_base: str | None = None
    smtp_host: str | None = None
    smtp_port: int = 587
    smtp_username: str | None = None
    smtp_password: str | None = None
    smtp_starttls: bool = True
    mail_from: str = "abowerk@localhost"
    vies_url: str | None = None
    cookies_secure: bool = True
    billing_schedule: str = "*/15 * * * *"

    @property
    def is_production(self) -> bool:
        return self.env == "production"


def _secret_from_var_dir(var_dir: Path) -> str:
    path = var_dir / "secret_key"
    if path.exists():
        return path.read_text().strip()
    var_dir.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    # O_EXCL: two processes starting at once must not each write a different key
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as fh:
        fh.write(key)
    return key


def load_settings(environ: dict[str, str] | None = None) -> Settings:
    env_vars = dict(os.environ if environ is None else environ)
    env = env_vars.get("ABOWERK_ENV", "development")
    var_dir = Path(env_vars.get("ABOWERK_VAR_DIR", "var")).resolve()
    database_url = (
        env_vars.get("ABOWERK_DATABASE_URL") or f"sqlite:///{var_dir / 'abowerk.sqlite3'}"
    )
    if database_url.startswith("postgresql://"):
        database_url = "postgresql+psycopg://" + database_url[len("postgresql://") :]
    secret_key = env_vars.get("ABOWERK_SECRET_KEY", "")
    if not secret_key:
        if env == "production":
            raise ConfigError("ABOWERK_SECRET_KEY must be set when ABOWERK_ENV=production")
        secret_key = _secret_from_var_dir(var_dir)
    return Settings(
        env=env,
        var_dir=var_dir,
        database_url=database_url,
        db_app_role=env_vars.get("ABOWERK_DB_APP_ROLE", "abowerk_app"),
        secret_key=secret_key,
        redis_url=env_vars.get("ABOWERK_REDIS_URL") or None,
        rate_limit=env_vars.get("ABOWERK_RATE_LIMIT", "100 per second;3000 per minute"),
        auth_failure_limit=env_vars.get("ABOWERK_AUTH_FAILURE_LIMIT", "30 per minute"),
        max_body_bytes=int(env_vars.get("ABOWERK_MAX_BODY_BYTES", str(1024 * 1024))),
        oauth_token_ttl=int(env_vars.get("ABOWERK_OAUTH_TOKEN_TTL", "3600")),
        log_level=env_vars.get("ABOWERK_LOG_LEVEL", "INFO"),
        previous_secret_keys=tuple(
            k for k in env_vars.get("ABOWERK_SECRET_KEY_PREVIOUS", "").split(",") if k
        ),
        tasks_immediate=env_vars.get("ABOWERK_TASKS_IMMEDIATE", "") in ("1", "true", "yes"),
        metrics_token=env_vars.get("ABOWERK_METRICS_TOKEN") or None,
        erasure_ledger_url=env_vars.get("ABOWERK_ERASURE_LEDGER_URL") or None,
        stripe_api_base=env_vars.get("ABOWERK_STRIPE_API_BASE") or None,
        smtp_host=env_vars.get("ABOWERK_SMTP_HOST") or None,
        smtp_port=int(env_vars.get("ABOWERK_SMTP_PORT") or "587"),
        smtp_username=env_vars.get("ABOWERK_SMTP_USERNAME") or None,
        smtp_password=env_vars.get("ABOWERK_SMTP_PASSWORD") or None,
        smtp_starttls=env_vars.get("ABOWERK_SMTP_STARTTLS", "true").lower()
        not in ("0", "false", "no", "off"),
        mail_from=env_vars.get("ABOWERK_MAIL_FROM") or "abowerk@localhost",
        vies_url=env_vars.get("ABOWERK_VIES_URL") or None,
        cookies_secure=env_vars.get("ABOWERK_COOKIES_SECURE", "true").lower()
        not in ("0", "false", "no", "off"),
        billing_schedule=_cron(env_vars.get("ABOWERK_BILLING_SCHEDULE") or "*/15 * * * *"),
    )


def _cron(spec: str) -> str:
    """Five cron fields, checked at start-up rather than by the scheduler every minute."""
    from huey import crontab

    fields = spec.split()
    if len(fields) != 5:
        raise ConfigError(f"ABOWERK_BILLING_SCHEDULE needs 5 cron fields, got {spec!r}")
    try:
        crontab(*fields)
    except ValueError as exc:
        raise ConfigError(f"ABOWERK_BILLING_SCHEDULE {spec!r}: {exc}") from exc
    return " ".join(fields)


def flask_config(settings: Settings) -> dict[str, Any]:
    return {
        "SECRET_KEY": settings.secret_key,
        "SQLALCHEMY_DATABASE_URI": settings.database_url,
        # PostgreSQL checks its pooled connections more cheaply (saas.extensions)
        "SQLALCHEMY_ENGINE_OPTIONS": {
            "pool_pre_ping": not settings.database_url.startswith("postgresql")
        },
        "MAX_CONTENT_LENGTH": settings.max_body_bytes,
        "ABOWERK_SETTINGS": settings,
        "API_TITLE": "abowerk API",
        "API_VERSION": "v1",
        "OPENAPI_VERSION": "3.1.0",
        "OPENAPI_URL_PREFIX": "/",
        "OPENAPI_JSON_PATH": "openapi.json",
    }
