"""The application factory. Order matters and is fixed:

1. settings and logging; 2. database and migrations; 3. request id; 4. authentication; 5. rate
limiting (keyed by the authenticated credential); 6. idempotency claim and the per-request
transaction; 7. API blueprints and OpenAPI; 8. error handlers.
"""

from __future__ import annotations

from typing import Any

import swagger_ui_bundle
from flask import Flask, Response, send_from_directory
from werkzeug.exceptions import HTTPException, InternalServerError

from saas import extensions
from saas import models as _models  # noqa: F401  (every table registered before anything queries)
from saas.auth import middleware as auth_middleware
from saas.auth import oauth
from saas.config import flask_config, load_settings
from saas.extensions import db, make_limiter, migrate
from saas.health import MIGRATIONS_DIR
from saas.health import blp as health_blp
from saas.http import metrics as http_metrics
from saas.http import request_context, security, transaction
from saas.http.api import Api
from saas.http.problems import from_domain_error, from_http_exception
from saas.kernel.errors import DomainError

API_BLUEPRINTS = (
    "saas.customers.api",
    "saas.catalog.api",
    "saas.subscriptions.api",
    "saas.testclocks.api",
    "saas.webhooks.api",
    "saas.gdpr.api",
    "billing.sellers.api",
    "billing.invoices.api",
    "billing.invoices.credit_notes_api",
    "billing.payments.api",
    "billing.payments.inbound_api",
    "billing.dunning.api",
    "saas.consents.api",
    "billing.runs.api",
    "saas.metrics.api",
    "billing.taxreports.api",
    "saas.portal.api",
)
# server-rendered pages (customer portal, tenant dashboard): each module's `register(app)`
PAGE_MODULES = ("saas.portal.views", "saas.dashboard.views")


def create_app(config: dict[str, Any] | None = None) -> Flask:
    settings = load_settings((config or {}).get("ENVIRON"))
    app = Flask("saas", instance_path=str(settings.var_dir), instance_relative_config=False)
    app.config.update(flask_config(settings))
    app.json.sort_keys = False  # type: ignore[attr-defined]  # keep schema field order
    app.config.update(
        OPENAPI_SWAGGER_UI_PATH="docs",
        OPENAPI_SWAGGER_UI_URL="/docs/assets/",
        API_SPEC_OPTIONS={
            "info": {"description": "Subscription billing for European software sellers."},
            "components": {
                "securitySchemes": {
                    "bearerAuth": {
                        "type": "http",
                        "scheme": "bearer",
                        "description": "An API key (sk_test_…/sk_live_…) or an OAuth access token",
                    }
                }
            },
            "security": [{"bearerAuth": []}],
        },
    )
    if config:
        app.config.update({k: v for k, v in config.items() if k != "ENVIRON"})
    request_context.configure_logging(settings.log_level)

    db.init_app(app)
    migrate.init_app(app, db, directory=str(MIGRATIONS_DIR), render_as_batch=True)
    with app.app_context():
        extensions.configure_engine(db.engine, app_role=settings.db_app_role)

    request_context.init_app(app)
    security.init_app(app)
    auth_middleware.init_app(app)
    limiter = make_limiter()
    limiter.init_app(app)
    transaction.init_app(app)

    api = Api(app)
    import importlib

    for module_name in API_BLUEPRINTS:
        api.register_blueprint(importlib.import_module(module_name).blp)
    server = oauth.init_app(app)
    _register_oauth_routes(app, server)
    for module_name in PAGE_MODULES:
        importlib.import_module(module_name).register(app)
    app.register_blueprint(health_blp)
    limiter.exempt(health_blp)
    http_metrics.init_app(app, limiter)  # /metrics: no API key, no rate limit

    @app.get("/docs/assets/<path:filename>")
    @limiter.exempt
    def swagger_assets(filename: str) -> Response:
        return send_from_directory(swagger_ui_bundle.swagger_ui_path, filename)

    _register_error_handlers(app)
    from saas import worker

    worker.bind_app(app)
    from saas.cli import register_commands

    register_commands(app)
    return app


def _register_oauth_routes(app: Flask, server: Any) -> None:
    @app.post("/oauth/token")
    def issue_token() -> Response:
        """OAuth 2.0 token endpoint (client_credentials; HTTP Basic or form credentials)."""
        response: Response = server.create_token_response()
        response.headers["Cache-Control"] = "no-store"
        return response


def _register_error_handlers(app: Flask) -> None:
    @app.errorhandler(DomainError)
    def _domain_error(err: DomainError) -> Response:
        return from_domain_error(err)

    @app.errorhandler(InternalServerError)
    def _internal(err: InternalServerError) -> Response:
        # Flask has logged the traceback already (as JSON, see configure_logging)
        return from_http_exception(err)

    @app.errorhandler(HTTPException)
    def _http(err: HTTPException) -> Response:
        return from_http_exception(err)
