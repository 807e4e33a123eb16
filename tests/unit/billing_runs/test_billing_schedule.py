"""ABOWERK_BILLING_SCHEDULE: when the scheduler's `billing_tick` starts a billing run."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from saas.config import ConfigError, load_settings


def _settings(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {"ABOWERK_VAR_DIR": str(tmp_path), "ABOWERK_SECRET_KEY": "x", **extra}


def test_billing_runs_every_quarter_hour_when_the_schedule_is_unset(tmp_path: Path) -> None:
    assert load_settings(_settings(tmp_path)).billing_schedule == "*/15 * * * *"


def test_a_schedule_that_is_not_five_valid_cron_fields_stops_the_start(tmp_path: Path) -> None:
    for spec in ("*/15 * * *", "61 * * * *", "every hour please"):
        with pytest.raises(ConfigError, match="ABOWERK_BILLING_SCHEDULE"):
            load_settings(_settings(tmp_path, ABOWERK_BILLING_SCHEDULE=spec))


def test_the_tick_follows_the_worker_apps_schedule(tmp_path: Path) -> None:
    from billing.runs.tasks import billing_due
    from saas.app import create_app

    def due(spec: str | None, at: datetime) -> bool:
        environ = _settings(tmp_path, ABOWERK_DATABASE_URL=f"sqlite:///{tmp_path / 'db'}")
        if spec is not None:
            environ["ABOWERK_BILLING_SCHEDULE"] = spec
        app = create_app({"ENVIRON": environ, "TESTING": True})
        with app.app_context():
            return billing_due(at)

    assert due(None, datetime(2026, 12, 1, 10, 30, tzinfo=UTC)) is True
    assert due(None, datetime(2026, 12, 1, 10, 31, tzinfo=UTC)) is False
    assert due("0 2 * * *", datetime(2026, 12, 1, 2, 0, tzinfo=UTC)) is True
    assert due("0 2 * * *", datetime(2026, 12, 1, 10, 30, tzinfo=UTC)) is False
    assert due("* * * * *", datetime(2026, 12, 1, 10, 31, tzinfo=UTC)) is True
