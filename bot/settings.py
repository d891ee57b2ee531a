"""The one settings object: every variable of CONTRACT.md, read from the environment and `.env`."""

from __future__ import annotations

import datetime as dt
import re
import secrets
from pathlib import Path
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from bot.errors import ConfigurationError

CHANNELS = ("telegram", "whatsapp", "web")
_TELEGRAM_SECRET = re.compile(r"[A-Za-z0-9_-]{1,256}")


def _parse_organizer(item: str) -> str:
    channel, sep, user_id = item.strip().partition(":")
    if not sep or channel not in CHANNELS or not user_id:
        raise ValueError(f"{item!r} is not CHANNEL:USER_ID with CHANNEL in {', '.join(CHANNELS)}")
    return f"{channel}:{user_id}"


class Settings(BaseSettings):
    """Process settings; a bad value stops start-up with one line naming the variable."""

    model_config = SettingsConfigDict(
        env_prefix="TADAMON_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        hide_input_in_errors=True,
    )

    database_url: str = "sqlite+aiosqlite:///./tadamon.db"
    redis_url: str | None = None
    http_host: str = "127.0.0.1"
    http_port: int = Field(default=8080, ge=1, le=65535)
    catalogue: Path | None = None
    timezone: str = "Africa/Casablanca"
    organizers: Annotated[tuple[str, ...], NoDecode] = ()

    telegram_token: SecretStr | None = None
    telegram_api_base: str = "https://api.telegram.org"
    telegram_webhook_url: str | None = None
    telegram_webhook_secret: SecretStr = Field(
        default_factory=lambda: SecretStr(secrets.token_urlsafe(32))
    )
    telegram_rate: float = Field(default=30, gt=0)

    whatsapp_token: SecretStr | None = None
    whatsapp_phone_number_id: str | None = None
    whatsapp_app_secret: SecretStr | None = None
    whatsapp_verify_token: SecretStr | None = None
    whatsapp_api_base: str = "https://graph.facebook.com/v23.0"
    whatsapp_templates: Annotated[dict[str, str], NoDecode] = Field(default_factory=dict)
    whatsapp_rate: int = Field(default=80, gt=0)

    # When set, /metrics wants `Authorization: Bearer <metrics_token>`; unset, it is open.
    metrics_token: SecretStr | None = None

    # Workshop reminders: the evening before at this time ("off": none), and this many
    # minutes before the start (0: none).
    reminder_evening: dt.time | None = dt.time(18)
    reminder_before: int = Field(default=60, ge=0, le=24 * 60)

    @field_validator("reminder_evening", mode="before")
    @classmethod
    def _evening(cls, value: object) -> object:
        if isinstance(value, str) and value.strip().lower() in ("off", "none", ""):
            return None
        return value

    @field_validator("database_url")
    @classmethod
    def _known_driver(cls, value: str) -> str:
        if not value.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            raise ValueError("must start with sqlite+aiosqlite:// or postgresql+asyncpg://")
        return value

    @field_validator("redis_url")
    @classmethod
    def _redis_scheme(cls, value: str | None) -> str | None:
        if value in (None, ""):
            return None
        assert value is not None
        if not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must start with redis://, rediss:// or unix://")
        return value

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError, OSError) as exc:  # "Africa" is a folder
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    @field_validator("whatsapp_templates", mode="before")
    @classmethod
    def _templates(cls, value: object) -> dict[str, str]:
        """`reminder:fr=salon_rappel,reminder:ar=salon_tadkir` -> {"reminder:fr": ...}."""
        if value is None or value == "":
            return {}
        if isinstance(value, dict):
            return {str(key): str(name) for key, name in value.items()}
        if not isinstance(value, str):
            raise ValueError("must be a comma list of KIND:LANG=TEMPLATE_NAME")
        templates: dict[str, str] = {}
        for item in value.split(","):
            if not item.strip():
                continue
            key, sep, name = item.strip().partition("=")
            kind, colon, language = key.partition(":")
            if not sep or not colon or not kind or language not in ("ar", "fr") or not name:
                raise ValueError(f"{item.strip()!r} is not KIND:LANG=TEMPLATE_NAME "
                                 "with LANG ar or fr")
            templates[f"{kind}:{language}"] = name
        return templates

    @field_validator("organizers", mode="before")
    @classmethod
    def _split_organizers(cls, value: object) -> tuple[str, ...]:
        if value is None or value == "":
            return ()
        if isinstance(value, str):
            items: list[object] = list(value.split(","))
        elif isinstance(value, list | tuple):
            items = list(value)
        else:
            raise ValueError("must be a comma list of CHANNEL:USER_ID")
        return tuple(_parse_organizer(str(item)) for item in items if str(item).strip())

    @field_validator("telegram_api_base", "whatsapp_api_base", mode="before")
    @classmethod
    def _empty_is_default(cls, value: object, info: ValidationInfo) -> object:
        """An empty API base means the public API, as if the variable were not set."""
        if value == "" and info.field_name is not None:
            return cls.model_fields[info.field_name].default
        return value

    @field_validator("telegram_api_base", "whatsapp_api_base", "telegram_webhook_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return value.rstrip("/")

    @field_validator(
        "telegram_token",
        "telegram_webhook_url",
        "whatsapp_token",
        "whatsapp_phone_number_id",
        "whatsapp_app_secret",
        "whatsapp_verify_token",
        "metrics_token",
        "catalogue",
        mode="before",
    )
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        """An empty value means unset (never an empty secret, never the current folder)."""
        return None if value == "" else value

    @field_validator("telegram_webhook_secret", mode="before")
    @classmethod
    def _empty_secret_is_generated(cls, value: object) -> object:
        """An empty webhook secret is generated, like an unset one."""
        return SecretStr(secrets.token_urlsafe(32)) if value == "" else value

    @field_validator("telegram_webhook_secret")
    @classmethod
    def _telegram_secret_charset(cls, value: SecretStr) -> SecretStr:
        """Telegram accepts 1 to 256 characters A-Z, a-z, 0-9, _ and - as a secret token."""
        if not _TELEGRAM_SECRET.fullmatch(value.get_secret_value()):
            raise ValueError("must be 1 to 256 characters among A-Z, a-z, 0-9, _ and -")
        return value

    @model_validator(mode="after")
    def _whatsapp_complete(self) -> Settings:
        if self.whatsapp_token is not None:
            missing = [
                name
                for name in ("phone_number_id", "app_secret", "verify_token")
                if getattr(self, f"whatsapp_{name}") in (None, "")
            ]
            if missing:
                raise ValueError(
                    f"TADAMON_WHATSAPP_{missing[0].upper()}: required when"
                    " TADAMON_WHATSAPP_TOKEN is set"
                )
        return self

    @property
    def zone(self) -> ZoneInfo:
        """The fair's time zone."""
        return ZoneInfo(self.timezone)


def load_settings(**overrides: object) -> Settings:
    """Read the settings, turning a validation error into one line naming the variable."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        error = exc.errors()[0]
        field = ".".join(str(part) for part in error["loc"])
        name = f"TADAMON_{field.upper()}" if field else "settings"
        message = " ".join(str(error["msg"]).removeprefix("Value error, ").split())
        if not field:
            raise ConfigurationError(message) from None
        raise ConfigurationError(f"{name}: {message}") from None
