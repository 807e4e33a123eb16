"""API fuzzing: schemathesis generates requests for every operation of /openapi.json.

Each answer must be within the documented contract: no 5xx, a documented status code, a
documented content type, and a body that matches the documented schema. (Schemathesis' check
that schema-valid data is always accepted is not run: business rules such as VAT ID
checksums or ISO country codes legitimately refuse data a JSON Schema cannot describe.)

Operations are enumerated at collection from a throwaway app, so a new endpoint is fuzzed
without anyone adding it here; each test then fuzzes that operation on the suite's app (both
database backends).
"""

from __future__ import annotations

import tempfile
from typing import Any

import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
EXAMPLES = 12


def _operations() -> list[tuple[str, str]]:
    from saas.app import create_app
    from tests.conftest import make_environ

    with tempfile.TemporaryDirectory() as tmp:
        app = create_app({"ENVIRON": make_environ(f"sqlite:///{tmp}/ops.sqlite3", tmp)})
        spec = app.test_client().get("/openapi.json").json
    methods = {"get", "post", "put", "patch", "delete"}
    return sorted(
        (method.upper(), path)
        for path, item in spec["paths"].items()
        for method in item
        if method in methods
    )


OPERATIONS = _operations()


def test_operations_were_enumerated_when_collected() -> None:
    assert len(OPERATIONS) > 20


@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_operation_answers_within_its_contract_when_fuzzed(
    app: Flask, make_tenant: Any, method: str, path: str
) -> None:
    tenant = make_tenant("Fuzz GmbH")
    operation = schemathesis.openapi.from_wsgi("/openapi.json", app)[path][method]

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        database=None,
        derandomize=True,  # the same cases on every run: CI is reproducible
    )
    @given(case=operation.as_strategy())
    def fuzz(case: Any) -> None:
        case.call_and_validate(headers=tenant.headers, checks=CHECKS)

    fuzz()
