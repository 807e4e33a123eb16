"""gunicorn settings for abowerk (`gunicorn -c deploy/gunicorn.conf.py saas.wsgi:app`).

Measured on 2-core machines (shared/PERF_NOTES.md): more sync workers than cores adds nothing,
and gthread with a few threads per worker gains ~15 % on small JSON responses, so the default
is one worker per core with 4 threads each. Override with WEB_CONCURRENCY / GUNICORN_THREADS.
"""

import multiprocessing
import os

bind = os.environ.get("ABOWERK_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("WEB_CONCURRENCY", str(max(2, multiprocessing.cpu_count()))))
worker_class = "gthread"
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
graceful_timeout = 30  # finish in-flight requests on SIGTERM before exiting
keepalive = 5
max_requests = 10000  # recycle workers now and then against slow leaks
max_requests_jitter = 1000
accesslog = "-"
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOG_LEVEL", "info")
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
