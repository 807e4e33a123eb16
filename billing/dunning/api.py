# mypy: disable-error-code="untyped-decorator, misc"
# (flask-smorest ships no type hints: its decorators and Blueprint base are Any)
"""``GET/PUT /v1/dunning-settings`` (scope ``billing``)."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView

from billing.dunning import services
from billing.dunning.models import DunningSettings
from billing.dunning.schemas import DunningSettingsIn, DunningSettingsOut
from saas.auth.middleware import requires
from saas.extensions import session
from saas.http.api import Blueprint
from saas.kernel.clock import utcnow

blp = Blueprint(
    "dunning_settings",
    __name__,
    url_prefix="/v1/dunning-settings",
    description="What happens after a failed payment: the retry schedule, the final action "
    "and the reminder e-mails",
)


@blp.route("")
class DunningSettingsResource(MethodView):
    @blp.response(200, DunningSettingsOut)
    @blp.problems(401, 403, 429)
    @requires("billing", "read")
    def get(self) -> DunningSettings:
        """The tenant's dunning settings (the defaults until it sets its own)."""
        return services.get_settings(session())

    @blp.arguments(DunningSettingsIn)
    @blp.response(200, DunningSettingsOut)
    @blp.problems(400, 401, 403, 409, 413, 422, 429)
    @requires("billing", "write")
    def put(self, data: dict[str, Any]) -> DunningSettings:
        """Replace the dunning settings. Open cases keep their retry days; the final action
        applies to every case that runs out from now on."""
        return services.put_settings(session(), data, now=utcnow())
