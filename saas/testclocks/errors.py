"""Test clock errors. Codes are public API: never rename one."""

from __future__ import annotations

from saas.kernel.errors import ForbiddenError, NotFoundError, ValidationFailedError


class TestClockNotFoundError(NotFoundError):
    __test__ = False
    code = "test_clock_not_found"


class TestClockLivemodeError(ForbiddenError):
    __test__ = False
    code = "test_clock_livemode"
    title = "Test clocks exist in test mode only"


class TestClockTimeError(ValidationFailedError):
    __test__ = False
    code = "test_clock_time_not_later"
    title = "A test clock only moves forward"
