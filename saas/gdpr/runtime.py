"""Builds the `ComplianceConfig` from the app's settings, once per app, and loads the
built-in personal-data providers into the registry."""

from __future__ import annotations

from flask import Flask, current_app

from compliance import providers
from compliance.audit import derive_hmac_key
from compliance.config import ComplianceConfig
from compliance.ledger import SqlErasureLedger, default_url
from compliance.links import LinkSigner

_KEY = "abowerk_compliance"


def compliance_config(app: Flask | None = None) -> ComplianceConfig:
    app = app or current_app._get_current_object()  # type: ignore[attr-defined]
    config: ComplianceConfig | None = app.extensions.get(_KEY)
    if config is None:
        settings = app.config["ABOWERK_SETTINGS"]
        keys = (settings.secret_key, *settings.previous_secret_keys)
        ledger_url = (
            app.config.get("ABOWERK_ERASURE_LEDGER_URL")
            or settings.erasure_ledger_url
            or default_url(settings.var_dir)
        )
        config = ComplianceConfig(
            hmac_keys=tuple(derive_hmac_key(k) for k in keys),
            export_dir=settings.var_dir / "exports",
            signer=LinkSigner(keys),
            ledger=SqlErasureLedger(ledger_url),
        )
        app.extensions[_KEY] = config
    return config


def init_app(app: Flask) -> None:
    providers.load()
    compliance_config(app)
