"""Kept for imports from the HTTP layer: pagination lives in the kernel
(`saas.kernel.pagination`), where the domain's reads can use it without importing upwards."""

from saas.kernel.pagination import ListArgs, paginate

__all__ = ["ListArgs", "paginate"]
