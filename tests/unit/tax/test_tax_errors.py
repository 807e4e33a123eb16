"""Domain errors: stable codes and kinds."""

from __future__ import annotations

import pytest

from tax import errors
from tax.errors import ErrorKind, TaxError


def _all_errors() -> list[type[TaxError]]:
    return [
        value
        for value in vars(errors).values()
        if isinstance(value, type) and issubclass(value, TaxError)
    ]


def test_every_error_has_a_unique_code_and_a_known_kind_when_defined() -> None:
    classes = _all_errors()
    codes = [cls.code for cls in classes]
    assert len(codes) == len(set(codes))
    assert all(cls.code.startswith("tax.") for cls in classes)
    assert all(cls.kind in set(ErrorKind) for cls in classes)


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (errors.RateNotFoundError("no rate"), {"code": "tax.rate_not_found",
                                               "kind": "not_found", "message": "no rate"}),
        (errors.LocationConflictError("clash", field="customer.evidence"),
         {"code": "tax.location_conflict", "kind": "conflict", "message": "clash",
          "field": "customer.evidence"}),
        (errors.OssCorrectionTooLateError("late"), {"code": "tax.oss_correction_too_late",
                                                    "kind": "forbidden", "message": "late"}),
    ],
)  # fmt: skip
def test_error_serialises_code_kind_message_and_field_when_converted(
    error: TaxError, expected: dict[str, str]
) -> None:
    assert error.to_dict() == expected
    assert str(error) == error.message
