from __future__ import annotations

from pathlib import Path

import pytest

from saas.config import ConfigError, load_settings


def test_production_refuses_to_start_when_secret_key_is_missing(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="ABOWERK_SECRET_KEY"):
        load_settings({"ABOWERK_ENV": "production", "ABOWERK_VAR_DIR": str(tmp_path)})


def test_embedded_mode_generates_secret_once_when_none_is_configured(tmp_path: Path) -> None:
    first = load_settings({"ABOWERK_VAR_DIR": str(tmp_path)})
    second = load_settings({"ABOWERK_VAR_DIR": str(tmp_path)})
    assert len(first.secret_key) >= 48
    assert first.secret_key == second.secret_key
    assert (tmp_path / "secret_key").stat().st_mode & 0o777 == 0o600


def test_default_database_is_sqlite_under_var_dir_when_url_is_unset(tmp_path: Path) -> None:
    settings = load_settings({"ABOWERK_VAR_DIR": str(tmp_path), "ABOWERK_SECRET_KEY": "x"})
    assert settings.database_url == f"sqlite:///{tmp_path / 'abowerk.sqlite3'}"


def test_plain_postgresql_url_uses_psycopg3_driver_when_given(tmp_path: Path) -> None:
    settings = load_settings(
        {
            "ABOWERK_VAR_DIR": str(tmp_path),
            "ABOWERK_SECRET_KEY": "x",
            "ABOWERK_DATABASE_URL": "postgresql://u@db/abowerk",
        }
    )
    assert settings.database_url == "postgresql+psycopg://u@db/abowerk"
