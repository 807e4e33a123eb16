"""Scopes: `<resource>:read` and `<resource>:write`; `*` stands for every resource.

Write implies read on the same resource. Resources are registered by the packages that own
them, so a key can only be given scopes that mean something.
"""

from __future__ import annotations

from collections.abc import Iterable

from saas.kernel.errors import ValidationFailedError

RESOURCES: set[str] = {
    "customers",
    "keys",
    "catalog",
    "subscriptions",
    "test_clocks",
    "webhooks",
    "events",
    "gdpr",
    "billing",
    "payments",
    "metrics",
    "tax",
    "portal",
}
ACTIONS = ("read", "write")
ALL_SCOPES = ("*:read", "*:write")


def register_resource(name: str) -> None:
    RESOURCES.add(name)


def normalise(scopes: Iterable[str]) -> list[str]:
    result: set[str] = set()
    for scope in scopes:
        resource, sep, action = scope.strip().partition(":")
        if not sep or action not in ACTIONS or (resource != "*" and resource not in RESOURCES):
            raise ValidationFailedError(
                f"unknown scope {scope!r}",
                code="invalid_scope",
                errors={"scopes": [f"unknown scope {scope!r}; use <resource>:read|write"]},
            )
        result.add(f"{resource}:{action}")
    if not result:
        raise ValidationFailedError("at least one scope is required", code="invalid_scope")
    return sorted(result)


def allows(granted: Iterable[str], resource: str, action: str) -> bool:
    wanted = {f"{resource}:{action}", f"*:{action}"}
    if action == "read":
        wanted |= {f"{resource}:write", "*:write"}
    return any(s in wanted for s in granted)
