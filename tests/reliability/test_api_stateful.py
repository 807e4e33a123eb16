"""Stateful API fuzzing: schemathesis follows the OpenAPI links of /openapi.json.

The responses document where their data leads (`links`): a created customer to its
subscription and to a draft invoice, a subscription (created or changed) to a plan change,
its charges and the customer's invoices, a draft to its lines and finalization, a finalized
invoice to its payments. Schemathesis builds a state machine from those links and walks
random sequences of them (create customer → subscribe → change plan → invoices), with
generated data in every field the link does not fill. Every answer must be within the
documented contract, as in the stateless fuzz (test_api_fuzz.py): no 5xx, a documented
status code and content type, a body that matches the documented schema.

A price is the one input no link can carry (a subscription needs a customer *and* a price,
and a link takes its values from one response): the tenant's catalog is seeded with two
monthly prices, and a generated `price_id` is swapped for one of them. Everything else is
generated. The test also counts the steps that went through a link and succeeded, so it fails
if the links stop working (a state machine that only ever gets 404s proves nothing).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import schemathesis
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, Phase, settings
from schemathesis.config import SchemathesisConfig
from schemathesis.core.parameters import ParameterLocation
from schemathesis.generation.stateful.state_machine import StepInput, StepOutput, normalize_name
from schemathesis.specs.openapi.stateful import ApiTransitions

from tests.api.test_catalog import create_plan, create_price, create_product
from tests.api.test_seller_profile import put_profile
from tests.conftest import CUSTOMER, TenantCtx
from tests.reliability.test_api_fuzz import CHECKS

SCENARIOS = 30
STEPS = 14
READ_BACK_LINKS = ("GetCustomer", "GetSubscription", "GetInvoice")

CREATE_CUSTOMER = "POST /v1/customers"
CREATE_SUBSCRIPTION = "POST /v1/subscriptions"
CHANGE_SUBSCRIPTION = "POST /v1/subscriptions/{subscription_id}/change"


def _seed_tenant(client: FlaskClient, make_tenant: Any) -> tuple[dict[str, str], list[str]]:
    """A tenant that can invoice (seller profile) and sell two monthly EUR prices, per seat (so
    that any generated quantity fits either), one with a trial."""
    tenant = make_tenant("Stateful GmbH")
    put_profile(client, tenant)
    product = create_product(client, tenant)
    prices = [
        create_price(
            client,
            tenant,
            create_plan(client, tenant, product["id"], name=name, trial_days=trial)["id"],
            unit_amount=amount,
            per_seat=True,
        )["id"]
        # a subscription without a payment method is incomplete (and cannot change) unless
        # its plan has a trial: one of each
        for name, amount, trial in (("Starter", 1900, 14), ("Pro", 4900, 0))
    ]
    return tenant.headers, prices


def _linked_steps(
    app: Flask, client: FlaskClient, make_tenant: Any
) -> tuple[Counter[str], Counter[str]]:
    """Run the state machine; return, per operation and parameter a link filled, the steps
    answered with a 2xx and all steps."""
    # Only the documented links: schemathesis' own guesses (dependency inference) would add
    # operations and transitions nobody promised. Only valid data: a request schemathesis
    # makes invalid on purpose (or sends without the API key) ends the sequence with a 4xx;
    # the stateless fuzz already sends those to every operation.
    config = SchemathesisConfig.from_dict(
        {
            "phases": {
                "stateful": {
                    "inference": {"algorithms": []},
                    "generation": {"mode": "positive"},
                }
            }
        }
    )
    schema = schemathesis.openapi.from_wsgi("/openapi.json", app, config=config)
    succeeded: Counter[str] = Counter()
    reached: Counter[str] = Counter()
    links = schema.as_state_machine()
    # Sequences start where a client starts: creating a customer. Schemathesis would also
    # start from every other operation with outgoing links, with generated ids that find
    # nothing (the stateless fuzz covers those) and use up the steps.
    root = normalize_name(f"RANDOM -> {CREATE_CUSTOMER}")
    assert root in links.root_rules, sorted(links.root_rules)
    dropped = {name: None for name in links.root_rules if name != root}
    # The links that only read back the object just answered (its 201 body was checked
    # against the same schema) compete for the steps with the ones that move the sequence on:
    # their rules go, and so do they from the graph schemathesis schedules the steps by.
    transitions = ApiTransitions()
    for label, operation in links._transitions.operations.items():
        for link in operation.outgoing:
            if link.name in READ_BACK_LINKS:
                dropped[normalize_name(link.full_name)] = None
            else:
                transitions.add_outgoing(label, link)
    assert len(dropped) > len(links.root_rules), "read-back links not found"

    # root_rules, _root_labels and _transitions are what schemathesis (pinned in the lock
    # file) schedules by; the asserts above fail if its names change
    class Workflow(links):  # type: ignore[misc,valid-type]
        root_rules = frozenset({root})
        _transitions = transitions
        _root_labels = frozenset({CREATE_CUSTOMER})

        def setup(self) -> None:
            # a fresh tenant per scenario: the same steps meet the same state, as Hypothesis
            # requires (with one shared tenant, a replayed scenario would find the customers,
            # e-mails and idempotency keys of the ones before it and take other branches)
            self.headers, self.price_ids = _seed_tenant(client, make_tenant)
            self.price_of: dict[str, str] = {}  # subscription id → its price, as last answered

        def before_call(self, case: Any) -> None:
            body = case.body
            if not isinstance(body, dict):
                return
            if case.operation.label == CHANGE_SUBSCRIPTION and not body.keys() & {
                "price_id",
                "quantity",
            }:
                # a change of nothing is refused (422): move the sequence on instead
                body["price_id"] = ""
            if isinstance(body.get("price_id"), str):
                # the same generated value picks the same price; a change picks another one
                # (a change to the current terms is refused: 422 subscription_change_empty)
                current = self.price_of.get(case.path_parameters.get("subscription_id") or "")
                ids = [p for p in self.price_ids if p != current]
                body["price_id"] = ids[len(body["price_id"]) % len(ids)]

        def get_call_kwargs(self, case: Any) -> dict[str, Any]:
            return {"headers": self.headers}

        def validate_response(
            self,
            response: Any,
            case: Any,
            additional_checks: Any = None,
            **kwargs: Any,
        ) -> None:
            case.validate_response(
                response, checks=CHECKS, transport_kwargs=kwargs or None, recorder=self.recorder
            )

        def step(self, input: StepInput) -> StepOutput:
            output = super().step(input)
            answer = output.response.json() if output.response.status_code < 300 else None
            if isinstance(answer, dict) and answer.get("object") == "subscription":
                self.price_of[answer["id"]] = answer["price_id"]
            for location, name in input.applied_parameters:
                key = f"{input.case.operation.label} {location.value}.{name}"
                reached[key] += 1
                if output.response.status_code < 300:
                    succeeded[key] += 1
            return output

    for name in dropped:  # a rule attribute that is not a rule: Hypothesis skips it
        setattr(Workflow, name, None)
    Workflow.run(
        settings=settings(
            max_examples=SCENARIOS,
            stateful_step_count=STEPS,
            phases=[Phase.generate],  # no shrinking: a failure is reported as found
            deadline=None,
            database=None,
            derandomize=True,
            suppress_health_check=list(HealthCheck),
        )
    )
    return succeeded, reached


def test_link_sequences_answer_within_their_contract_when_fuzzed(
    app: Flask, client: FlaskClient, make_tenant: Any
) -> None:
    succeeded, reached = _linked_steps(app, client, make_tenant)

    path, body = ParameterLocation.PATH.value, ParameterLocation.BODY.value
    # the chain the links promise, each step fed by the one before it and answered with a 2xx:
    # customer → subscription → plan change → the customer's invoices; customer → draft
    assert succeeded[f"{CREATE_SUBSCRIPTION} {body}.customer_id"] > 0, succeeded
    assert succeeded[f"{CHANGE_SUBSCRIPTION} {path}.subscription_id"] > 0, succeeded
    assert succeeded["GET /v1/invoices query.customer_id"] > 0, succeeded
    assert succeeded[f"POST /v1/invoices {body}.customer_id"] > 0, succeeded
    # generated customers often lack the address a full invoice needs (422): the link must
    # be followed, whatever the answer
    assert reached[f"POST /v1/invoices/{{invoice_id}}/finalize {path}.invoice_id"] > 0, reached


def test_responses_document_their_links_when_openapi_is_fetched(client: FlaskClient) -> None:
    paths = client.get("/openapi.json").json["paths"]
    created = paths["/v1/customers"]["post"]["responses"]["201"]["links"]
    assert created["CreateSubscription"] == {
        "operationRef": "#/paths/~1v1~1subscriptions/post",
        "description": "Subscribe the customer to a price.",
        "requestBody": {"customer_id": "$response.body#/id"},
    }
    changed = paths["/v1/subscriptions/{subscription_id}/change"]["post"]["responses"]["200"]
    assert changed["links"]["ListInvoices"]["parameters"] == {
        "customer_id": "$response.body#/customer_id"
    }
    # every link names an operation of this document
    for path, item in paths.items():
        for operation in item.values():
            if not isinstance(operation, dict):  # the path's own `parameters`
                continue
            for response in operation.get("responses", {}).values():
                for name, link in response.get("links", {}).items():
                    ref = link["operationRef"].removeprefix("#/paths/")
                    target, method = ref.rsplit("/", 1)
                    target = target.replace("~1", "/").replace("~0", "~")
                    assert method in paths[target], (path, name, link)


def test_nul_is_refused_before_the_database_when_sent_anywhere(
    client: FlaskClient, tenant: TenantCtx
) -> None:
    # found by the state machine on PostgreSQL (text cannot hold NUL): a cursor with NUL
    # was a 500; so were names, paths and metadata
    body = {**CUSTOMER, "metadata": {"k": "v\x00"}}
    created = client.post("/v1/customers", json=body, headers=tenant.headers)
    assert created.status_code == 422, created.json
    assert created.json["errors"] == {"metadata.k": ["must not contain the NUL character"]}
    listed = client.get("/v1/customers?starting_after=cus_%00", headers=tenant.headers)
    assert listed.status_code == 422, listed.json
    assert list(listed.json["errors"]) == ["starting_after"]
    got = client.get("/v1/subscriptions/sub_%00/charges", headers=tenant.headers)
    assert got.status_code == 404, got.json
    assert client.get("/v1/customers", headers=tenant.headers).json["data"] == []
