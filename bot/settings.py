"""The one settings object: every variable of CONTRACT.md, read from the environment and `.env`."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import ipaddress
import re
import secrets
from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit
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
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
# Organizers are people a platform vouches for; anyone can open a web chat session.
ORGANIZER_CHANNELS = ("telegram", "whatsapp")
_TELEGRAM_SECRET = re.compile(r"[A-Za-z0-9_-]{1,256}")
_TELEGRAM_USER_ID = re.compile(r"[1-9][0-9]{0,19}")
_QUIET_HOURS = re.compile(r"([0-9]{1,2}):([0-9]{2})\s*-\s*([0-9]{1,2}):([0-9]{2})")
WEBHOOK_SECRET_PURPOSE = b"tadamon telegram webhook secret"
# The push services of Chrome and Edge (FCM), Firefox (Mozilla), Safari (Apple) and Windows.
DEFAULT_PUSH_SERVICES = ("fcm.googleapis.com", "push.services.mozilla.com", "push.apple.com",
                         "notify.windows.com")
_PUSH_HOST = re.compile(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+")


def parse_organizer(item: str) -> tuple[str, str]:
    """`telegram:1234` -> ("telegram", "1234"); ValueError saying what is wrong otherwise."""
    channel, sep, user_id = item.strip().partition(":")
    user_id = user_id.strip()
    if channel == "web":
        raise ValueError(f"{item.strip()!r}: a web chat session cannot be an organizer "
                         "(anyone can open one); use telegram:USER_ID or whatsapp:USER_ID")
    if not sep or channel not in ORGANIZER_CHANNELS or not user_id:
        raise ValueError(f"{item.strip()!r} is not CHANNEL:USER_ID with CHANNEL telegram or "
                         "whatsapp")
    if channel == "telegram" and not _TELEGRAM_USER_ID.fullmatch(user_id):
        raise ValueError(f"{item.strip()!r}: a Telegram user id is a whole number")
    return channel, user_id


def _parse_organizer(item: str) -> str:
    channel, user_id = parse_organizer(item)
    return f"{channel}:{user_id}"


def derived_webhook_secret(token: str) -> str:
    """The Telegram webhook secret every process with this bot token derives alike: a keyed
    hash of the token (it cannot be turned back into the token), in Telegram's alphabet."""
    digest = hmac.new(token.encode(), WEBHOOK_SECRET_PURPOSE, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def parse_quiet_hours(value: str) -> tuple[dt.time, dt.time] | None:
    """`22:00-08:00` -> (22:00, 08:00); `off` -> None; ValueError otherwise."""
    if value.strip().lower() in ("off", "none"):
        return None
    match = _QUIET_HOURS.fullmatch(value.strip())
    if match is None:
        raise ValueError(f"{value!r} is not HH:MM-HH:MM (fair time), or off")
    hours, minutes, end_hours, end_minutes = (int(part) for part in match.groups())
    try:
        start, end = dt.time(hours, minutes), dt.time(end_hours, end_minutes)
    except ValueError:
        raise ValueError(f"{value!r}: not a time of day") from None
    if start == end:
        raise ValueError(f"{value!r} is an empty span: write off for no quiet hours")
    return start, end


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
    # The public address of this service (web chat links, QR codes; the web chat's origin).
    public_url: str | None = None
    # Proxies whose X-Forwarded-For is believed (IPs or CIDRs); nobody's by default.
    trusted_proxies: Annotated[tuple[IPNetwork, ...], NoDecode] = ()
    # New web chat sessions per client address: a bucket this size, refilled at this rate.
    web_sessions_per_minute: int = Field(default=30, ge=1)
    # Web Push (VAPID): the private key (base64url of the raw 32 bytes, or PEM); unset, one is
    # made once and kept in the database. The subject is who push services may contact.
    vapid_private_key: SecretStr | None = None
    vapid_subject: str | None = None
    # Where browsers' push subscriptions may point: https hosts (and their subdomains), or
    # exact origins (`http://127.0.0.1:8099`, for a test push service). Nowhere else is posted.
    push_services: Annotated[tuple[str, ...], NoDecode] = DEFAULT_PUSH_SERVICES

    telegram_token: SecretStr | None = None
    telegram_api_base: str = "https://api.telegram.org"
    telegram_webhook_url: str | None = None
    # Unset or empty: derived from the token after validation (_derive_webhook_secret).
    telegram_webhook_secret: SecretStr = SecretStr("")
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
    # Bulk messages wait from the first time to the second (fair time; may cross midnight).
    quiet_hours: Annotated[tuple[dt.time, dt.time] | None, NoDecode] = (dt.time(22), dt.time(8))
    # Days after the fair's last day when the people who have not written for as long are
    # erased (their ratings stay as anonymous figures).
    retention_days: int = Field(default=180, ge=1, le=3650)

    @field_validator("quiet_hours", mode="before")
    @classmethod
    def _quiet_hours(cls, value: object) -> object:
        if value == "":  # `VAR=`, as compose files write it: the default
            return cls.model_fields["quiet_hours"].default
        if isinstance(value, str):
            return parse_quiet_hours(value)
        return value

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
            if not sep or not colon or not kind or language not in ("ar", "fr", "en") or not name:
                raise ValueError(f"{item.strip()!r} is not KIND:LANG=TEMPLATE_NAME "
                                 "with LANG ar, fr or en")
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

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _networks(cls, value: object) -> tuple[IPNetwork, ...]:
        """`10.0.0.5, 172.16.0.0/12` -> networks (an address alone is a network of one)."""
        if value is None or value == "":
            return ()
        items = value.split(",") if isinstance(value, str) else value
        if not isinstance(items, list | tuple):
            raise ValueError("must be a comma list of IP addresses or CIDR networks")
        networks: list[IPNetwork] = []
        for item in items:
            text = str(item).strip()
            if not text:
                continue
            try:
                networks.append(ipaddress.ip_network(text, strict=False))
            except ValueError:
                raise ValueError(f"{text!r} is not an IP address or CIDR network") from None
        return tuple(networks)

    @field_validator("push_services", mode="before")
    @classmethod
    def _push_services(cls, value: object) -> object:
        if value == "":
            return DEFAULT_PUSH_SERVICES
        if not isinstance(value, str):
            return value
        services = []
        for item in value.split(","):
            text = item.strip().lower().rstrip("/")
            if not text:
                continue
            if "://" in text:
                parts = urlsplit(text)
                if parts.scheme not in ("http", "https") or not parts.hostname or parts.path:
                    raise ValueError(f"{text!r} is neither a host nor an origin like "
                                     "http://127.0.0.1:8099")
            elif not _PUSH_HOST.fullmatch(text):
                raise ValueError(f"{text!r} is not a host name")
            services.append(text)
        return tuple(services)

    @field_validator("vapid_private_key")
    @classmethod
    def _vapid_key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        from py_vapid import Vapid02

        text = value.get_secret_value().strip()
        try:
            if text.startswith("-----BEGIN"):
                Vapid02.from_pem(text.encode())
            else:
                Vapid02.from_string(text)
        except Exception:
            raise ValueError("must be a P-256 private key: base64url of its 32 bytes (as "
                             "`vapid --gen` or web-push tools print it), or PEM") from None
        return SecretStr(text)

    @field_validator("vapid_subject")
    @classmethod
    def _vapid_subject(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        if not value.startswith(("mailto:", "https://")):
            raise ValueError("must be a mailto: address or an https:// URL")
        return value

    @field_validator("telegram_api_base", "whatsapp_api_base", "telegram_webhook_url",
                     "public_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return value.rstrip("/")

    @field_validator("public_url")
    @classmethod
    def _public_host(cls, value: str | None) -> str | None:
        """A public URL names a host (and a valid port, if any)."""
        if value is None:
            return None
        try:
            parts = urlsplit(value)
            parts.port  # noqa: B018 - raises ValueError for a port out of range
        except ValueError:
            raise ValueError("must be an http:// or https:// URL with a valid port") from None
        if not parts.hostname:
            raise ValueError("must name a host, like https://salon.example")
        return value

    @field_validator(
        "telegram_token",
        "telegram_webhook_url",
        "whatsapp_token",
        "whatsapp_phone_number_id",
        "whatsapp_app_secret",
        "whatsapp_verify_token",
        "metrics_token",
        "catalogue",
        "public_url",
        "vapid_private_key",
        mode="before",
    )
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        """An empty value means unset (never an empty secret, never the current folder)."""
        return None if value == "" else value

    @field_validator("telegram_webhook_secret")
    @classmethod
    def _telegram_secret_charset(cls, value: SecretStr) -> SecretStr:
        """Telegram accepts 1 to 256 characters A-Z, a-z, 0-9, _ and - as a secret token
        (empty: derived from the token, below)."""
        secret = value.get_secret_value()
        if secret and not _TELEGRAM_SECRET.fullmatch(secret):
            raise ValueError("must be 1 to 256 characters among A-Z, a-z, 0-9, _ and -")
        return value

    @model_validator(mode="after")
    def _derive_webhook_secret(self) -> Settings:
        """Unset, the webhook secret is derived from the bot token, so that every process of
        one deployment expects the same one (a random one per process would make all but the
        process that registered the webhook refuse genuine updates)."""
        if not self.telegram_webhook_secret.get_secret_value():
            # Without a token Telegram is off and the secret is never used.
            token = self.telegram_token.get_secret_value() if self.telegram_token else None
            self.telegram_webhook_secret = SecretStr(
                derived_webhook_secret(token) if token else secrets.token_urlsafe(32))
        return self

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
    def public_origin(self) -> str | None:
        """The web origin of `public_url` (`https://salon.example`), as browsers send it."""
        if self.public_url is None:
            return None
        parts = urlsplit(self.public_url)
        host = (parts.hostname or "").lower()
        if ":" in host:
            host = f"[{host}]"
        default = {"http": 80, "https": 443}[parts.scheme.lower()]
        port = "" if parts.port in (None, default) else f":{parts.port}"
        return f"{parts.scheme.lower()}://{host}{port}"

    @property
    def zone(self) -> ZoneInfo:
        """The default time zone; a fair's own record (`timezone`) wins where a fair is known."""
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
