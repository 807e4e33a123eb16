"""gunicorn settings for abowerk (`gunicorn -c deploy/gunicorn.conf.py saas.wsgi:app`).

Measured on 2-core machines (shared/PERF_NOTES.md): more sync workers than cores adds nothing,
and gthread with a few threads per worker gains ~15 % on small JSON responses, so the default
is one worker per core with 2 threads each. With abowerk's request mix, 2 threads beat 4 (about
5-10 % more requests/s, less CPU per request and a lower p99: fewer threads contending for a
worker's GIL), 3 workers or 1 thread were no better (bench/bench_load.py runs of 2026-11-22,
docs/reliability.md "Load"). Override with WEB_CONCURRENCY / GUNICORN_THREADS.

Prometheus metrics with several worker processes: set PROMETHEUS_MULTIPROC_DIR to a directory
the server may write (the deployment files use a tmpfs). Every worker process then writes its
counters there and `/metrics`, whichever process answers it, adds up all of them. The hooks
below empty the directory when the server starts (counters from an earlier run would otherwise
be added in), and when a worker process exits they drop its share of the live gauges (requests
in flight) and fold its counters into an archive file. Reference: docs/operations.md,
"Monitoring".
"""

import glob
import os

bind = os.environ.get("ABOWERK_BIND", "127.0.0.1:8000")
# sched_getaffinity honours CPU pinning (taskset, cpusets); a container's CPU quota it does not
# see, so set WEB_CONCURRENCY there (compose.yaml does)
workers = int(os.environ.get("WEB_CONCURRENCY", str(max(2, len(os.sched_getaffinity(0))))))
worker_class = "gthread"
threads = int(os.environ.get("GUNICORN_THREADS", "2"))
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
graceful_timeout = 30  # finish in-flight requests on SIGTERM before exiting
keepalive = 5
# Recycle workers now and then against slow leaks, but rarely: a new worker spends about
# 2.5 s of CPU building the app (models, schemas, the OpenAPI document), and on two cores a
# recycle every 10,000 requests (20 s apart per worker at full load) put a second into the
# p99 latency of the load test (docs/reliability.md, "Load"). Nothing in the app grows
# without bound (its caches are LRUs), so 100,000 is hygiene, not a leak workaround.
# (`preload_app` would make a recycle cheap, but then `kill -HUP` would restart workers on
# the old code, and the documented zero-downtime reload depends on it loading the new.)
max_requests = 100000
max_requests_jitter = 10000
# the app writes one JSON access line per request (with request and tenant ids); gunicorn's
# plain-text access log would duplicate it in another format
accesslog = None
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOG_LEVEL", "info")
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")


def on_starting(server):
    """In the master, before any worker starts: a fresh multi-process metrics directory."""
    path = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if path:
        os.makedirs(path, exist_ok=True)
        for stale in glob.glob(os.path.join(path, "*.db")):
            os.remove(stale)


def child_exit(server, worker):
    """In the master, after a worker process exited (recycled, crashed or stopped)."""
    path = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if path:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid, path)  # its share of live gauges goes
        _fold_into_archive(path, worker.pid)


def _fold_into_archive(path, pid):
    """Add a dead worker's counters and histograms to one archive file per kind, then delete
    its files. Its counts must stay (totals never drop), but workers are recycled every
    ~10,000 requests (max_requests), and every scrape reads every file: without folding, the
    directory would grow by a few files per recycle for as long as the server runs."""
    from prometheus_client.mmap_dict import MmapedDict

    for kind in ("counter", "histogram", "summary"):
        dead = os.path.join(path, f"{kind}_{pid}.db")
        if not os.path.exists(dead):
            continue
        archive = MmapedDict(os.path.join(path, f"{kind}_archive.db"))
        try:
            for key, value, _timestamp, _pos in MmapedDict.read_all_values_from_file(dead):
                total, _ = archive.read_value(key)
                archive.write_value(key, total + value, 0.0)
        finally:
            archive.close()
        # a scrape between the write above and this removal counts the worker twice; the
        # window is a few microseconds once per recycle
        os.remove(dead)
