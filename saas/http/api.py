"""flask-smorest wiring: problem+json errors, bearer security, documented error responses and
OpenAPI links (which response feeds which next call; schemathesis follows them in its stateful
tests)."""

from __future__ import annotations

from collections.abc import Callable
from copy import deepcopy
from http import HTTPStatus
from typing import Any, TypeVar

import flask_smorest
import marshmallow as ma
from flask import Response
from flask_smorest.utils import deepupdate, remove_none, resolve_schema_instance
from werkzeug.exceptions import HTTPException

from saas.http.problems import PROBLEM_MIME, from_http_exception

F = TypeVar("F", bound=Callable[..., Any])


class ProblemSchema(ma.Schema):
    """RFC 9457 problem details, with abowerk's stable `code` and per-field `errors`."""

    type = ma.fields.String(
        required=True, metadata={"example": "urn:abowerk:problem:validation_failed"}
    )
    title = ma.fields.String(required=True)
    status = ma.fields.Integer(required=True)
    code = ma.fields.String(required=True, metadata={"description": "Stable error code"})
    detail = ma.fields.String()
    errors = ma.fields.Dict(metadata={"description": "Field name to list of messages"})
    request_id = ma.fields.String()


def _decimal_as_string(
    converter: Any, field: ma.fields.Field[Any], ret: dict[str, Any], **_: Any
) -> dict[str, Any]:
    """A `Decimal(as_string=True)` goes out as a JSON string ("1.5"): say so, not `number`."""
    if not (isinstance(field, ma.fields.Decimal) and field.as_string):
        return {}
    documented = ret.get("type")
    if isinstance(documented, list):  # nullable: ["number", "null"]
        return {"type": ["string" if t == "number" else t for t in documented]}
    return {"type": "string"}


# the validators of the `metadata` fields (saas.catalog.schemas, saas.customers.schemas), by
# name: this layer imports no domain package
_METADATA_VALIDATORS = frozenset({"validate_metadata", "_validate_metadata"})


def _metadata_rules(
    converter: Any, field: ma.fields.Field[Any], ret: dict[str, Any], **_: Any
) -> dict[str, Any]:
    """Document what the metadata validators accept: at most 50 keys of 1-40 characters,
    string values of at most 500 (the generic `Dict` would promise any JSON value)."""
    names = {getattr(v, "__name__", None) for v in getattr(field, "validators", ())}
    if not (isinstance(field, ma.fields.Dict) and names & _METADATA_VALIDATORS):
        return {}
    return {
        "maxProperties": 50,
        "propertyNames": {"minLength": 1, "maxLength": 40},
        "additionalProperties": {"type": "string", "maxLength": 500},
    }


class Api(flask_smorest.Api):
    ERROR_SCHEMA = ProblemSchema

    def _init_spec(self, **kwargs: Any) -> None:
        super()._init_spec(**kwargs)
        self.ma_plugin.converter.add_attribute_function(_decimal_as_string)
        self.ma_plugin.converter.add_attribute_function(_metadata_rules)

    def handle_http_exception(self, error: HTTPException) -> Response:
        return from_http_exception(error)


class Blueprint(flask_smorest.Blueprint):
    """flask-smorest's blueprint, with documentation-only decorators that do not wrap.

    `alt_response` and `doc` wrap the view in one more function each, which then runs on
    every request (with a `current_app` lookup and a coroutine check) only to call the view,
    and deep-copy the documentation gathered so far each time; eight problem statuses made
    eight such layers around most views. `problems` and `links` write the same
    documentation onto the view itself: one copy, no wrapper, the same OpenAPI document.
    """

    def problems(self, *statuses: int) -> Callable[[F], F]:
        """Document the problem responses a view can give (schemathesis checks them)."""

        def decorate(func: F) -> F:
            doc = _own_doc(func)
            responses = doc.setdefault("response", {}).setdefault("responses", {})
            for status in statuses:
                resp_doc = remove_none(
                    {
                        "schema": self._make_doc_response_schema(
                            resolve_schema_instance(ProblemSchema)
                        ),
                        "description": HTTPStatus(status).phrase,
                    }
                )
                resp_doc["content_type"] = PROBLEM_MIME
                responses.setdefault(status, []).append(resp_doc)
            return func

        return decorate

    def links(self, status: int, **links: dict[str, Any]) -> Callable[[F], F]:
        """Document the OpenAPI links of the `status` response: name to `link(...)`."""

        def decorate(func: F) -> F:
            doc = _own_doc(func)
            # int key: flask-smorest keys the responses of @response by the int status, and
            # the manual doc is deep-merged into them (as `Blueprint.doc` would)
            doc["manual_doc"] = deepupdate(
                doc.get("manual_doc", {}), {"responses": {status: {"links": links}}}
            )
            return func

        return decorate


def _own_doc(func: Any) -> dict[str, Any]:
    """The view's documentation as a copy of its own: `functools.wraps` shares the wrapped
    function's dictionary, which must not change with it."""
    doc: dict[str, Any] = deepcopy(getattr(func, "_apidoc", {}))
    func._apidoc = doc
    return doc


def link(
    method: str,
    path: str,
    description: str,
    *,
    parameters: dict[str, str] | None = None,
    request_body: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """An OpenAPI link to the operation `method path` (the path as documented, with `{name}`).

    The target is named by `operationRef` (a JSON pointer into this document's `paths`): the
    operations carry no `operationId`. Values are runtime expressions such as
    `$response.body#/id`; a `request_body` object lists only the fields the link fills.
    """
    pointer = path.replace("~", "~0").replace("/", "~1")
    out: dict[str, Any] = {
        "operationRef": f"#/paths/{pointer}/{method.lower()}",
        "description": description,
    }
    if parameters:
        out["parameters"] = parameters
    if request_body:
        out["requestBody"] = request_body
    return out
