"""Settings come from DEJA_ variables, nested with __, and every one of them is documented."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import BaseModel

from app.settings import Settings

DOC = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"


def env_names(model: type[BaseModel], prefix: str = "DEJA_") -> list[str]:
    names = []
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            names += env_names(annotation, f"{prefix}{name.upper()}__")
        else:
            names.append(f"{prefix}{name.upper()}")
    return names


def test_every_setting_is_documented() -> None:
    doc = DOC.read_text()
    missing = [name for name in env_names(Settings) if f"`{name}`" not in doc]
    assert missing == []


def test_nested_settings_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEJA_PORT", "9123")
    monkeypatch.setenv("DEJA_CACHE__TOP_K", "7")
    monkeypatch.setenv("DEJA_DATABASE__POOL_SIZE", "3")
    settings = Settings()
    assert settings.port == 9123
    assert settings.cache.top_k == 7
    assert settings.database.pool_size == 3
    assert settings.database_url is None or settings.database_url.startswith("postgresql")


def test_bad_values_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEJA_PORT", "0")
    with pytest.raises(ValueError, match="port"):
        Settings()


def test_data_dir_is_per_user_whatever_the_working_directory(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("DEJA_DATA_DIR", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    first = Settings().data_dir
    monkeypatch.chdir(tmp_path)
    assert Settings().data_dir == first == tmp_path / "xdg" / "deja"


def test_a_relative_data_dir_is_fixed_where_the_command_started(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DEJA_DATA_DIR", "state")
    assert Settings().data_dir == tmp_path / "state"
