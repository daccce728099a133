"""Process settings: read from GRIDBOT_* variables, sensible defaults, secrets never echoed."""

import os
from pathlib import Path

import pytest

from bot.settings import MissingTokenError, Settings, SettingsError, load_settings

TOKEN = "123456789:AAH-secret_part-XYZ"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test sees only the GRIDBOT_* variables it sets itself."""
    for name in list(os.environ):
        if name.upper().startswith("GRIDBOT_"):
            monkeypatch.delenv(name)


def test_defaults_need_no_environment() -> None:
    settings = Settings()

    assert settings.bot_token is None
    assert settings.api_base == "https://api.telegram.org"
    assert settings.data_dir == Path("data")
    assert settings.database_url is None
    assert settings.config is None
    assert settings.log_level == "INFO"
    assert settings.webhook_secret is None
    assert settings.redis_url is None


def test_settings_are_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRIDBOT_BOT_TOKEN", TOKEN)
    monkeypatch.setenv("GRIDBOT_API_BASE", "http://127.0.0.1:8081/")
    monkeypatch.setenv("GRIDBOT_DATA_DIR", "/var/lib/gridbot")
    monkeypatch.setenv("GRIDBOT_DATABASE_URL", "postgresql+asyncpg://bot@db/gridbot")
    monkeypatch.setenv("GRIDBOT_CONFIG", "/etc/gridbot/deployment.yaml")
    monkeypatch.setenv("GRIDBOT_LOG_LEVEL", "debug")
    monkeypatch.setenv("GRIDBOT_WEBHOOK_SECRET", "s3cret_-token")
    monkeypatch.setenv("GRIDBOT_REDIS_URL", "redis://cache:6379/0")

    settings = Settings()

    assert settings.require_token() == TOKEN
    assert settings.api_base == "http://127.0.0.1:8081"
    assert settings.data_dir == Path("/var/lib/gridbot")
    assert settings.effective_database_url == "postgresql+asyncpg://bot@db/gridbot"
    assert settings.config == Path("/etc/gridbot/deployment.yaml")
    assert settings.log_level == "DEBUG"
    assert settings.webhook_secret is not None
    assert settings.webhook_secret.get_secret_value() == "s3cret_-token"
    assert settings.redis_url == "redis://cache:6379/0"


def test_keyword_arguments_win_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRIDBOT_LOG_LEVEL", "ERROR")
    assert Settings(log_level="WARNING").log_level == "WARNING"


def test_the_database_defaults_to_a_sqlite_file_in_the_data_directory(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert Settings().effective_database_url == "sqlite+aiosqlite:///data/gridbot.db"
    monkeypatch.setenv("GRIDBOT_DATA_DIR", "/srv/grid data")
    assert Settings().effective_database_url == "sqlite+aiosqlite:////srv/grid data/gridbot.db"
    assert (
        Settings(data_dir=Path("state")).effective_database_url
        == "sqlite+aiosqlite:///state/gridbot.db"
    )


def test_an_empty_variable_counts_as_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRIDBOT_DATABASE_URL", "")
    monkeypatch.setenv("GRIDBOT_BOT_TOKEN", "")
    settings = Settings()
    assert settings.effective_database_url == "sqlite+aiosqlite:///data/gridbot.db"
    assert settings.bot_token is None


def test_a_dotenv_file_is_not_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / ".env").write_text("GRIDBOT_LOG_LEVEL=DEBUG\nGRIDBOT_BOT_TOKEN=1:x\n")
    monkeypatch.chdir(tmp_path)
    settings = Settings()
    assert settings.log_level == "INFO"
    assert settings.bot_token is None


def test_commands_without_telegram_work_without_a_token() -> None:
    settings = Settings(config=Path("deployment.yaml"))
    with pytest.raises(MissingTokenError, match="GRIDBOT_BOT_TOKEN is not set.*@BotFather"):
        settings.require_token()


def test_the_token_never_shows_in_reprs_or_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = Settings(bot_token=TOKEN, webhook_secret="pssst_value")
    assert "secret_part" not in repr(settings)
    assert "secret_part" not in str(settings)
    assert "pssst_value" not in repr(settings)

    monkeypatch.setenv("GRIDBOT_BOT_TOKEN", "not a token secret_part")
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert str(caught.value).startswith("GRIDBOT_BOT_TOKEN: does not look like a bot token")
    assert "secret_part" not in str(caught.value)


@pytest.mark.parametrize(
    ("variable", "value", "words"),
    [
        ("GRIDBOT_LOG_LEVEL", "LOUD", "must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL"),
        ("GRIDBOT_LOG_LEVEL", "", None),
        ("GRIDBOT_BOT_TOKEN", "abc:def", "does not look like a bot token"),
        ("GRIDBOT_BOT_TOKEN", "123456", "does not look like a bot token"),
        ("GRIDBOT_API_BASE", "api.telegram.org", "must be an http(s) URL"),
        ("GRIDBOT_API_BASE", "ftp://api.telegram.org", "must be an http(s) URL"),
        ("GRIDBOT_WEBHOOK_SECRET", "has spaces", "1-256 characters"),
        ("GRIDBOT_WEBHOOK_SECRET", "x" * 257, "1-256 characters"),
        ("GRIDBOT_REDIS_URL", "localhost:6379", "must start with redis://"),
    ],
)
def test_a_bad_variable_is_named(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, words: str | None
) -> None:
    monkeypatch.setenv(variable, value)
    if words is None:
        load_settings()  # empty means unset
        return
    with pytest.raises(SettingsError) as caught:
        load_settings()
    [line] = caught.value.lines
    assert line.startswith(f"{variable}: ")
    assert words in line


def test_every_bad_variable_is_named_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRIDBOT_LOG_LEVEL", "LOUD")
    monkeypatch.setenv("GRIDBOT_REDIS_URL", "localhost")
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert [line.split(":")[0] for line in caught.value.lines] == [
        "GRIDBOT_LOG_LEVEL", "GRIDBOT_REDIS_URL",
    ]


def test_a_misspelt_keyword_is_refused() -> None:
    with pytest.raises(SettingsError, match="GRIDBOT_LOGLEVEL: is not a setting"):
        load_settings(loglevel="DEBUG")


def test_log_levels_are_case_insensitive_and_warn_means_warning() -> None:
    assert Settings(log_level=" warn ").log_level == "WARNING"
    assert Settings(log_level="Critical").log_level == "CRITICAL"


def test_settings_cannot_be_changed_once_built() -> None:
    settings = Settings()
    with pytest.raises(ValueError, match="frozen"):
        settings.log_level = "DEBUG"  # type: ignore[misc]
