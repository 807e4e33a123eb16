"""flask-smorest wiring: problem+json errors, bearer security, documented error responses."""

from __future__ import annotations

from collections.abc import Callable
from http import HTTPStatus
from typing import Any, TypeVar

import flask_smorest
import marshmallow as ma
from flask import Response
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


class Api(flask_smorest.Api):
    ERROR_SCHEMA = ProblemSchema

    def handle_http_exception(self, error: HTTPException) -> Response:
        return from_http_exception(error)


class Blueprint(flask_smorest.Blueprint):
    def problems(self, *statuses: int) -> Callable[[F], F]:
        """Document the problem responses a view can give (schemathesis checks them)."""

        def decorate(func: F) -> F:
            for status in statuses:
                func = self.alt_response(
                    status,
                    schema=ProblemSchema,
                    description=HTTPStatus(status).phrase,
                    content_type=PROBLEM_MIME,
                )(func)
            return func

        return decorate
