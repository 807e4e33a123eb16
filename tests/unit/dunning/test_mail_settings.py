"""The SMTP settings the outbox's sender is built from."""

from __future__ import annotations

from pathlib import Path

import pytest

from saas.config import load_settings
from saas.mail.sender import SmtpSettings


def test_smtp_is_off_and_defaults_apply_when_nothing_is_configured(tmp_path: Path) -> None:
    smtp = SmtpSettings.from_settings(
        load_settings({"ABOWERK_VAR_DIR": str(tmp_path), "ABOWERK_SECRET_KEY": "x"})
    )
    assert smtp == SmtpSettings(host=None, port=587, starttls=True, mail_from="abowerk@localhost")
    assert smtp.username is None and smtp.password is None
    assert not smtp.enabled


@pytest.mark.parametrize(
    ("value", "starttls"),
    [("true", True), ("1", True), ("false", False), ("0", False), ("no", False), ("OFF", False)],
)
def test_smtp_settings_are_read_when_configured(tmp_path: Path, value: str, starttls: bool) -> None:
    smtp = SmtpSettings.from_settings(
        load_settings(
            {
                "ABOWERK_VAR_DIR": str(tmp_path),
                "ABOWERK_SECRET_KEY": "x",
                "ABOWERK_SMTP_HOST": "smtp.example.net",
                "ABOWERK_SMTP_PORT": "2525",
                "ABOWERK_SMTP_USERNAME": "abowerk",
                "ABOWERK_SMTP_PASSWORD": "s3cret",
                "ABOWERK_SMTP_STARTTLS": value,
                "ABOWERK_MAIL_FROM": "rechnung@muster.example",
            }
        )
    )
    assert smtp.enabled
    assert (smtp.host, smtp.port, smtp.username, smtp.password) == (
        "smtp.example.net",
        2525,
        "abowerk",
        "s3cret",
    )
    assert smtp.starttls is starttls and smtp.mail_from == "rechnung@muster.example"
