"""Imports every model module, so that the metadata Alembic and the tests see is complete.

A new package with tables adds its `models` module here.
"""

from billing.dunning import models as dunning_models
from billing.invoices import models as invoice_models
from billing.metrics import models as metrics_models
from billing.payments import models as payment_models
from billing.runs import models as billing_run_models
from billing.sellers import models as seller_models
from billing.taxcounters import models as tax_counter_models
from compliance import models as compliance_models
from saas.auth import models as auth_models
from saas.catalog import models as catalog_models
from saas.consents import models as consent_models
from saas.customers import models as customer_models
from saas.dashboard import models as staff_models
from saas.events import models as event_models
from saas.http import models as http_models
from saas.mail import models as mail_models
from saas.portal import models as portal_models
from saas.subscriptions import models as subscription_models
from saas.tenants import models as tenant_models
from saas.testclocks import models as test_clock_models
from saas.webhooks import models as webhook_models

__all__ = [
    "auth_models",
    "billing_run_models",
    "catalog_models",
    "compliance_models",
    "consent_models",
    "customer_models",
    "dunning_models",
    "event_models",
    "http_models",
    "invoice_models",
    "mail_models",
    "metrics_models",
    "payment_models",
    "portal_models",
    "seller_models",
    "staff_models",
    "subscription_models",
    "tax_counter_models",
    "tenant_models",
    "test_clock_models",
    "webhook_models",
]
