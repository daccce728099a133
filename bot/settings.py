"""Process settings from GRIDBOT_* environment variables: secrets, paths and service URLs.
The district itself (stations, grids, rules) lives in the deployment file."""

import logging
import re
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = [
    "MissingTokenError", "MissingWebhookSecretError", "Settings", "SettingsError", "load_settings",
]

ENV_PREFIX = "GRIDBOT_"
_TOKEN = re.compile(r"\d+:\S+")
_WEBHOOK_SECRET = re.compile(r"[A-Za-z0-9_-]{1,256}")
_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


class MissingTokenError(RuntimeError):
    """Raised by Settings.require_token() when a command that talks to Telegram has no token."""


class MissingWebhookSecretError(RuntimeError):
    """Raised by Settings.require_webhook_secret() when `gridbot webhook` has no secret."""


class SettingsError(ValueError):
    """The environment holds an unusable setting; ``str()`` gives one line per variable."""

    def __init__(self, lines: list[str]) -> None:
        self.lines = lines
        super().__init__("\n".join(lines))


class Settings(BaseSettings):
    """Everything a gridbot process reads from its environment (constructor keywords win)."""

    # Environment only, no .env file: deployments set variables in systemd units or compose
    # files, and a stray .env in the working directory should not change behaviour.
    # Inputs are hidden in errors so a malformed token never ends up in a log.
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_file=None,
        env_ignore_empty=True,
        extra="forbid",
        frozen=True,
        hide_input_in_errors=True,
    )

    bot_token: SecretStr | None = None
    api_base: str = "https://api.telegram.org"
    data_dir: Path = Path("data")
    database_url: str | None = None
    config: Path | None = None
    log_level: str = "INFO"
    webhook_secret: SecretStr | None = None
    # `gridbot webhook`: the public base URL Telegram posts to (https://bot.example.org), where
    # the server listens, how many updates Telegram may post at once, and how long a stopping
    # worker waits for the updates it is handling (seconds).
    webhook_url: str | None = None
    webhook_host: str = "127.0.0.1"
    webhook_port: int = Field(default=8080, ge=1, le=65535)
    webhook_max_connections: int = Field(default=40, ge=1, le=100)
    webhook_drain_seconds: float = Field(default=30.0, gt=0)
    redis_url: str | None = None
    # Every key gridbot keeps in Redis starts with this: bots sharing one Redis need their own.
    redis_prefix: str = Field(default="gridbot", pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    # How often the scheduler looks for due reminders, and how often a standby scheduler
    # tries to take the lead (seconds).
    tick_seconds: float = Field(default=30.0, gt=0)
    standby_retry_seconds: float = Field(default=5.0, gt=0)
    # Pace sending to Telegram's limits; off only against a test server (the emulator).
    send_limits: bool = True
    # A CJK TrueType font for the digest's pictures and PDF; Debian's usual places when unset.
    font: Path | None = None

    @field_validator("bot_token")
    @classmethod
    def _token_looks_like_botfather(cls, token: SecretStr | None) -> SecretStr | None:
        if token is not None and not _TOKEN.fullmatch(token.get_secret_value().strip()):
            raise ValueError(
                "does not look like a bot token (BotFather gives digits, a colon and a secret, "
                "e.g. 123456:ABC-DEF...)"
            )
        return None if token is None else SecretStr(token.get_secret_value().strip())

    @field_validator("api_base")
    @classmethod
    def _api_base_is_http(cls, url: str) -> str:
        parts = urlsplit(url.strip())
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError("must be an http(s) URL such as https://api.telegram.org")
        return url.strip().rstrip("/")

    @field_validator("log_level")
    @classmethod
    def _log_level_is_known(cls, level: str) -> str:
        name = level.strip().upper()
        if name == "WARN":
            name = "WARNING"
        if name not in _LEVELS or name not in logging.getLevelNamesMapping():
            raise ValueError(f"must be one of {', '.join(_LEVELS)}")
        return name

    @field_validator("webhook_secret")
    @classmethod
    def _webhook_secret_is_telegram_safe(cls, secret: SecretStr | None) -> SecretStr | None:
        # Telegram sends the secret back in X-Telegram-Bot-Api-Secret-Token and only accepts
        # 1-256 characters from this alphabet when the webhook is set.
        if secret is not None and not _WEBHOOK_SECRET.fullmatch(secret.get_secret_value()):
            raise ValueError("must be 1-256 characters of A-Z, a-z, 0-9, '_' and '-'")
        return secret

    @field_validator("webhook_url")
    @classmethod
    def _webhook_url_is_http(cls, url: str | None) -> str | None:
        if url is None:
            return None
        parts = urlsplit(url.strip())
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError("must be the bot's public https:// URL such as https://bot.example.org")
        return url.strip().rstrip("/")

    @field_validator("redis_url")
    @classmethod
    def _redis_url_has_scheme(cls, url: str | None) -> str | None:
        if url is not None and urlsplit(url).scheme not in ("redis", "rediss", "unix"):
            raise ValueError("must start with redis://, rediss:// or unix://")
        return url

    @property
    def effective_database_url(self) -> str:
        """GRIDBOT_DATABASE_URL if set, else a SQLite file in the data directory."""
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'gridbot.db').as_posix()}"

    def require_token(self) -> str:
        """The bot token, for commands that talk to Telegram; a clear error when it is unset."""
        if self.bot_token is None:
            raise MissingTokenError(
                f"{ENV_PREFIX}BOT_TOKEN is not set: create a bot with @BotFather and export "
                f"{ENV_PREFIX}BOT_TOKEN=<token> before starting gridbot"
            )
        return self.bot_token.get_secret_value()

    def require_webhook_secret(self) -> str:
        """The webhook's secret, for `gridbot webhook`; a clear error when it is unset."""
        if self.webhook_secret is None:
            raise MissingWebhookSecretError(
                f"{ENV_PREFIX}WEBHOOK_SECRET is not set: gridbot webhook needs a secret of 1-256 "
                "characters of A-Z, a-z, 0-9, '_' and '-' (e.g. export "
                f"{ENV_PREFIX}WEBHOOK_SECRET=$(openssl rand -hex 32))"
            )
        return self.webhook_secret.get_secret_value()


def load_settings(**overrides: object) -> Settings:
    """Build Settings from the environment and keywords; SettingsError names each bad variable
    (without echoing its value)."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        lines = []
        for error in exc.errors(include_input=False):
            field = ".".join(str(part) for part in error["loc"])
            message = error["msg"].removeprefix("Value error, ")
            if error["type"] == "extra_forbidden":
                message = "is not a setting"
            lines.append(f"{ENV_PREFIX}{field.upper()}: {message}")
        raise SettingsError(lines) from None
