"""WSGI entry point for gunicorn: `gunicorn -c deploy/gunicorn.conf.py saas.wsgi:app`."""

from saas.app import create_app

app = create_app()
