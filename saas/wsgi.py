"""WSGI entry point for gunicorn: `gunicorn -c deploy/gunicorn.conf.py saas.wsgi:app`."""

import gc

from saas.app import create_app

app = create_app()
# The app leaves some 290,000 objects behind that live as long as the process (models,
# schemas, the OpenAPI document, SQLAlchemy's mappers). The cyclic collector would walk all
# of them in every full collection, about 100 ms during which no thread of the worker runs:
# the largest source of the load test's p99 latency (docs/reliability.md, "Load"). Frozen,
# they are left out of collections; what requests allocate is collected as before.
gc.freeze()
