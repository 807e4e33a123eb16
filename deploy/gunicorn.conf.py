"""gunicorn settings for abowerk (`gunicorn -c deploy/gunicorn.conf.py saas.wsgi:app`).

Measured on 2-core machines (shared/PERF_NOTES.md): more sync workers than cores adds nothing,
and gthread with a few threads per worker gains ~15 % on small JSON responses, so the default
is one worker per core with 4 threads each. Override with WEB_CONCURRENCY / GUNICORN_THREADS.
"""

import os

bind = os.environ.get("ABOWERK_BIND", "127.0.0.1:8000")
# sched_getaffinity honours CPU pinning (taskset, cpusets); a container's CPU quota it does not
# see, so set WEB_CONCURRENCY there (compose.yaml does)
workers = int(os.environ.get("WEB_CONCURRENCY", str(max(2, len(os.sched_getaffinity(0))))))
worker_class = "gthread"
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
graceful_timeout = 30  # finish in-flight requests on SIGTERM before exiting
keepalive = 5
max_requests = 10000  # recycle workers now and then against slow leaks
max_requests_jitter = 1000
# the app writes one JSON access line per request (with request and tenant ids); gunicorn's
# plain-text access log would duplicate it in another format
accesslog = None
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOG_LEVEL", "info")
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
