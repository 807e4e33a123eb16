from __future__ import annotations

from typing import Any

from flask import request
from flask.views import MethodView

from saas.auth.middleware import current_principal, requires
from saas.extensions import session
from saas.http.api import Blueprint
from saas.kernel.clock import utcnow
from saas.kernel.pagination import ListArgs, list_envelope
from saas.testclocks import queries, services
from saas.testclocks.models import TestClock
from saas.testclocks.schemas import (
    TestClockAdvanceSchema,
    TestClockCreateSchema,
    TestClockListSchema,
    TestClockSchema,
)

blp = Blueprint(
    "test_clocks", __name__, url_prefix="/v1/test_clocks", description="Test clocks (test mode)"
)


@blp.route("")
class TestClockCollection(MethodView):
    @blp.arguments(ListArgs, location="query")
    @blp.response(200, TestClockListSchema)
    @blp.problems(400, 401, 403, 422, 429)
    @requires("test_clocks", "read")
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """List test clocks, newest first."""
        rows, has_more = queries.list_test_clocks(
            session(), limit=args["limit"], starting_after=args["starting_after"]
        )
        return list_envelope(request.path, rows, has_more)

    @blp.arguments(TestClockCreateSchema)
    @blp.response(201, TestClockSchema)
    @blp.problems(400, 401, 403, 413, 422, 429)
    @requires("test_clocks", "write")
    def post(self, data: dict[str, Any]) -> TestClock:
        """Create a test clock at `frozen_time` (test mode only)."""
        return services.create_test_clock(session(), data, now=utcnow())


@blp.route("/<test_clock_id>")
class TestClockItem(MethodView):
    @blp.response(200, TestClockSchema)
    @blp.problems(401, 403, 404, 429)
    @requires("test_clocks", "read")
    def get(self, test_clock_id: str) -> TestClock:
        """Get a test clock."""
        return queries.get_test_clock(session(), test_clock_id)


@blp.route("/<test_clock_id>/advance")
class TestClockAdvance(MethodView):
    @blp.arguments(TestClockAdvanceSchema)
    @blp.response(200, TestClockSchema)
    @blp.problems(400, 401, 403, 404, 409, 413, 422, 429)
    @requires("test_clocks", "write")
    def post(self, data: dict[str, Any], test_clock_id: str) -> TestClock:
        """Move the clock to a later `frozen_time`; due subscription transitions run now."""
        return services.advance_test_clock(
            session(),
            test_clock_id,
            data,
            actor=current_principal().credential_id,
            now=utcnow(),
        )
