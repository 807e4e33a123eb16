"""The kernel: what every domain package stands on (database base, tenancy, errors, ids, clock).

Nothing in here imports a domain package or Flask's request globals.
"""
