from __future__ import annotations

import pytest

from saas.auth import scopes
from saas.kernel.errors import ValidationFailedError


@pytest.mark.parametrize(
    ("granted", "resource", "action", "expected"),
    [
        (["customers:read"], "customers", "read", True),
        (["customers:read"], "customers", "write", False),
        (["customers:write"], "customers", "read", True),
        (["*:read"], "customers", "read", True),
        (["*:read"], "customers", "write", False),
        (["*:write"], "customers", "read", True),
        (["keys:write"], "customers", "read", False),
        ([], "customers", "read", False),
    ],
)
def test_allows_follows_write_implies_read_when_checking(
    granted: list[str], resource: str, action: str, expected: bool
) -> None:
    assert scopes.allows(granted, resource, action) is expected


@pytest.mark.parametrize("bad", ["customers", "customers:delete", "nothing:read", ":read", ""])
def test_normalise_rejects_scope_when_malformed_or_unknown(bad: str) -> None:
    with pytest.raises(ValidationFailedError):
        scopes.normalise([bad])


def test_normalise_sorts_and_deduplicates_when_valid() -> None:
    assert scopes.normalise(["customers:write", "customers:read", "customers:read"]) == [
        "customers:read",
        "customers:write",
    ]
