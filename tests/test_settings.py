"""Settings: the defaults and variables of CONTRACT.md, the `.env` file, one-line errors."""

from __future__ import annotations

import datetime as dt
import os
import re
from pathlib import Path

import pytest

from bot.errors import ConfigurationError
from bot.settings import Settings, load_settings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No TADAMON_* variable from the outside, and a working folder without a `.env`."""
    for name in list(os.environ):
        if name.upper().startswith("TADAMON_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _settings() -> Settings:
    return Settings(_env_file=None)


def test_defaults_match_the_contract() -> None:
    """With nothing configured, every value is the documented default."""
    settings = _settings()
    assert settings.database_url == "sqlite+aiosqlite:///./tadamon.db"
    assert settings.redis_url is None
    assert settings.http_host == "127.0.0.1"
    assert settings.http_port == 8080
    assert settings.catalogue is None
    assert settings.timezone == "Africa/Casablanca"
    assert settings.zone.key == "Africa/Casablanca"
    assert settings.organizers == ()
    assert settings.telegram_token is None
    assert settings.telegram_api_base == "https://api.telegram.org"
    assert settings.telegram_webhook_url is None
    assert settings.telegram_rate == 30
    assert settings.whatsapp_token is None
    assert settings.whatsapp_phone_number_id is None
    assert settings.whatsapp_app_secret is None
    assert settings.whatsapp_verify_token is None
    assert settings.whatsapp_api_base == "https://graph.facebook.com/v23.0"
    assert settings.whatsapp_rate == 80
    assert settings.quiet_hours == (dt.time(22), dt.time(8))


def test_webhook_secret_is_derived_from_the_token_alike_in_every_process(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Unset, the secret is the same in every process of a deployment (each made its own
    before, and all but the one that registered the webhook refused genuine updates); another
    bot gets another secret; the token cannot be read in it; an explicit secret wins."""
    token = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"
    monkeypatch.setenv("TADAMON_TELEGRAM_TOKEN", token)
    first = _settings().telegram_webhook_secret.get_secret_value()
    second = load_settings().telegram_webhook_secret.get_secret_value()
    assert first == second
    assert re.fullmatch(r"[A-Za-z0-9_-]{32,256}", first), first
    assert token not in first and token.split(":")[1] not in first and first != token
    monkeypatch.setenv("TADAMON_TELEGRAM_WEBHOOK_SECRET", "")  # as compose files write it
    assert _settings().telegram_webhook_secret.get_secret_value() == first
    monkeypatch.setenv("TADAMON_TELEGRAM_TOKEN", "987654321:BBHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw")
    assert _settings().telegram_webhook_secret.get_secret_value() != first
    monkeypatch.setenv("TADAMON_TELEGRAM_WEBHOOK_SECRET", "chosen_by-the-operator")
    assert _settings().telegram_webhook_secret.get_secret_value() == "chosen_by-the-operator"


def test_every_contract_variable_is_read_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Each variable of CONTRACT.md lands in its field."""
    values = {
        "TADAMON_DATABASE_URL": "postgresql+asyncpg://tadamon:pw@db:5432/tadamon",
        "TADAMON_REDIS_URL": "redis://cache:6379/2",
        "TADAMON_HTTP_HOST": "0.0.0.0",
        "TADAMON_HTTP_PORT": "9000",
        "TADAMON_CATALOGUE": "/srv/fair/catalogue.yaml",
        "TADAMON_TIMEZONE": "Europe/Paris",
        "TADAMON_ORGANIZERS": "telegram:1,whatsapp:212600000001",
        "TADAMON_TELEGRAM_TOKEN": "123:ABC",
        "TADAMON_TELEGRAM_API_BASE": "http://127.0.0.1:8081/",
        "TADAMON_TELEGRAM_WEBHOOK_URL": "https://bot.example.ma/telegram/webhook",
        "TADAMON_TELEGRAM_WEBHOOK_SECRET": "s3cret_Token-1",
        "TADAMON_TELEGRAM_RATE": "25",
        "TADAMON_WHATSAPP_TOKEN": "EAAG",
        "TADAMON_WHATSAPP_PHONE_NUMBER_ID": "1065",
        "TADAMON_WHATSAPP_APP_SECRET": "app-secret",
        "TADAMON_WHATSAPP_VERIFY_TOKEN": "verify-me",
        "TADAMON_WHATSAPP_API_BASE": "http://127.0.0.1:8082/v23.0",
        "TADAMON_WHATSAPP_RATE": "1000",
        "TADAMON_QUIET_HOURS": "21:30-07:00",
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)

    settings = _settings()

    assert settings.database_url == values["TADAMON_DATABASE_URL"]
    assert settings.redis_url == "redis://cache:6379/2"
    assert settings.http_host == "0.0.0.0"
    assert settings.http_port == 9000
    assert settings.catalogue == Path("/srv/fair/catalogue.yaml")
    assert settings.timezone == "Europe/Paris"
    assert settings.organizers == ("telegram:1", "whatsapp:212600000001")
    assert settings.telegram_token is not None
    assert settings.telegram_token.get_secret_value() == "123:ABC"
    assert settings.telegram_api_base == "http://127.0.0.1:8081"
    assert settings.telegram_webhook_url == "https://bot.example.ma/telegram/webhook"
    assert settings.telegram_webhook_secret.get_secret_value() == "s3cret_Token-1"
    assert settings.telegram_rate == 25
    assert settings.whatsapp_token is not None
    assert settings.whatsapp_token.get_secret_value() == "EAAG"
    assert settings.whatsapp_phone_number_id == "1065"
    assert settings.whatsapp_app_secret is not None
    assert settings.whatsapp_app_secret.get_secret_value() == "app-secret"
    assert settings.whatsapp_verify_token is not None
    assert settings.whatsapp_verify_token.get_secret_value() == "verify-me"
    assert settings.whatsapp_api_base == "http://127.0.0.1:8082/v23.0"
    assert settings.whatsapp_rate == 1000
    assert settings.quiet_hours == (dt.time(21, 30), dt.time(7))
    assert load_settings() == settings


def test_secrets_do_not_show_in_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tokens and secrets never appear when the settings are printed or logged."""
    monkeypatch.setenv("TADAMON_TELEGRAM_TOKEN", "123:TOPSECRET")
    monkeypatch.setenv("TADAMON_TELEGRAM_WEBHOOK_SECRET", "HOOKSECRET")
    assert "TOPSECRET" not in repr(_settings())
    assert "HOOKSECRET" not in repr(_settings())


def test_dotenv_in_the_working_folder_is_read(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`.env` in the working folder is read; a real environment variable wins over it."""
    (clean_env / ".env").write_text(
        "# local settings\n"
        "TADAMON_HTTP_PORT=9191\n"
        "TADAMON_TIMEZONE=Africa/Casablanca\n"
        'TADAMON_ORGANIZERS="telegram:5, whatsapp:212600000005"\n'
        "TADAMON_REDIS_URL=redis://from-dotenv:6379/0\n"
        "UNRELATED_VARIABLE=ignored\n",
        encoding="utf-8",
    )
    settings = load_settings()
    assert settings.http_port == 9191
    assert settings.organizers == ("telegram:5", "whatsapp:212600000005")
    assert settings.redis_url == "redis://from-dotenv:6379/0"

    monkeypatch.setenv("TADAMON_HTTP_PORT", "7000")
    assert load_settings().http_port == 7000


def test_dotenv_mistake_is_reported_like_the_environment(clean_env: Path) -> None:
    """A bad value in `.env` stops start-up with the same one line."""
    (clean_env / ".env").write_text("TADAMON_HTTP_PORT=eighty\n", encoding="utf-8")
    with pytest.raises(ConfigurationError) as raised:
        load_settings()
    assert str(raised.value).startswith("TADAMON_HTTP_PORT")


def test_organizers_parse_to_a_tuple(monkeypatch: pytest.MonkeyPatch) -> None:
    """A comma list with spaces gives clean CHANNEL:USER_ID entries; empty items are skipped."""
    monkeypatch.setenv("TADAMON_ORGANIZERS", "telegram:1, whatsapp:2126")
    assert load_settings().organizers == ("telegram:1", "whatsapp:2126")
    monkeypatch.setenv("TADAMON_ORGANIZERS", " whatsapp:2126 ,, telegram:9 ,")
    assert load_settings().organizers == ("whatsapp:2126", "telegram:9")
    monkeypatch.setenv("TADAMON_ORGANIZERS", "")
    assert load_settings().organizers == ()


BAD_VALUES = [
    ("TADAMON_HTTP_PORT", "eighty", "TADAMON_HTTP_PORT"),
    ("TADAMON_HTTP_PORT", "70000", "TADAMON_HTTP_PORT"),
    ("TADAMON_HTTP_PORT", "0", "TADAMON_HTTP_PORT"),
    ("TADAMON_DATABASE_URL", "mysql://x", "TADAMON_DATABASE_URL"),
    ("TADAMON_DATABASE_URL", "postgresql://tadamon@db/tadamon", "TADAMON_DATABASE_URL"),
    ("TADAMON_REDIS_URL", "http://x", "TADAMON_REDIS_URL"),
    ("TADAMON_TIMEZONE", "Mars/Olympus", "TADAMON_TIMEZONE"),
    ("TADAMON_TIMEZONE", "Africa", "TADAMON_TIMEZONE"),  # a folder of the zone database
    ("TADAMON_TIMEZONE", "../etc/passwd", "TADAMON_TIMEZONE"),
    ("TADAMON_ORGANIZERS", "telegram", "TADAMON_ORGANIZERS"),
    ("TADAMON_ORGANIZERS", "fax:1", "TADAMON_ORGANIZERS"),
    ("TADAMON_ORGANIZERS", "telegram:1, web:", "TADAMON_ORGANIZERS"),
    # a web chat session is not an identity anyone vouches for
    ("TADAMON_ORGANIZERS", "telegram:1,web:session-boss", "TADAMON_ORGANIZERS"),
    ("TADAMON_ORGANIZERS", "telegram:@boss", "TADAMON_ORGANIZERS"),
    ("TADAMON_QUIET_HOURS", "22h-8h", "TADAMON_QUIET_HOURS"),
    ("TADAMON_QUIET_HOURS", "22:00", "TADAMON_QUIET_HOURS"),
    ("TADAMON_QUIET_HOURS", "25:00-08:00", "TADAMON_QUIET_HOURS"),
    ("TADAMON_QUIET_HOURS", "08:00-08:00", "TADAMON_QUIET_HOURS"),
    ("TADAMON_TELEGRAM_RATE", "0", "TADAMON_TELEGRAM_RATE"),
    ("TADAMON_TELEGRAM_RATE", "fast", "TADAMON_TELEGRAM_RATE"),
    ("TADAMON_WHATSAPP_RATE", "-1", "TADAMON_WHATSAPP_RATE"),
    ("TADAMON_WHATSAPP_RATE", "2.5", "TADAMON_WHATSAPP_RATE"),  # a whole number (CONTRACT.md)
    ("TADAMON_TELEGRAM_API_BASE", "ftp://x", "TADAMON_TELEGRAM_API_BASE"),
    ("TADAMON_WHATSAPP_API_BASE", "graph.facebook.com", "TADAMON_WHATSAPP_API_BASE"),
    ("TADAMON_TELEGRAM_WEBHOOK_URL", "bot.example.ma/hook", "TADAMON_TELEGRAM_WEBHOOK_URL"),
    ("TADAMON_TELEGRAM_WEBHOOK_SECRET", "has space", "TADAMON_TELEGRAM_WEBHOOK_SECRET"),
    ("TADAMON_REMINDER_EVENING", "25:00", "TADAMON_REMINDER_EVENING"),
    ("TADAMON_REMINDER_EVENING", "soon", "TADAMON_REMINDER_EVENING"),
    ("TADAMON_REMINDER_BEFORE", "-5", "TADAMON_REMINDER_BEFORE"),
    ("TADAMON_REMINDER_BEFORE", "one hour", "TADAMON_REMINDER_BEFORE"),
]


def test_quiet_hours(monkeypatch: pytest.MonkeyPatch) -> None:
    """Across midnight, within a day, or off."""
    monkeypatch.setenv("TADAMON_QUIET_HOURS", "13:00-14:00")
    assert load_settings().quiet_hours == (dt.time(13), dt.time(14))
    monkeypatch.setenv("TADAMON_QUIET_HOURS", " 23:00 - 6:30 ")
    assert load_settings().quiet_hours == (dt.time(23), dt.time(6, 30))
    monkeypatch.setenv("TADAMON_QUIET_HOURS", "off")
    assert load_settings().quiet_hours is None


def test_a_web_organizer_is_refused_with_the_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TADAMON_ORGANIZERS", "telegram:1, web:session-boss")
    with pytest.raises(ConfigurationError) as raised:
        load_settings()
    assert str(raised.value) == (
        "TADAMON_ORGANIZERS: 'web:session-boss': a web chat session cannot be an organizer "
        "(anyone can open one); use telegram:USER_ID or whatsapp:USER_ID")


def test_reminder_times(monkeypatch: pytest.MonkeyPatch) -> None:
    """The evening reminder at 18:00 and one an hour before, unless told otherwise."""
    settings = load_settings()
    assert (settings.reminder_evening, settings.reminder_before) == (dt.time(18), 60)
    monkeypatch.setenv("TADAMON_REMINDER_EVENING", "19:30")
    monkeypatch.setenv("TADAMON_REMINDER_BEFORE", "30")
    settings = load_settings()
    assert (settings.reminder_evening, settings.reminder_before) == (dt.time(19, 30), 30)
    monkeypatch.setenv("TADAMON_REMINDER_EVENING", "off")
    monkeypatch.setenv("TADAMON_REMINDER_BEFORE", "0")
    settings = load_settings()
    assert (settings.reminder_evening, settings.reminder_before) == (None, 0)


@pytest.mark.parametrize(("variable", "value", "named"), BAD_VALUES)
def test_bad_value_stops_with_one_line_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, named: str
) -> None:
    """A malformed value raises ConfigurationError: one line, starting with the variable."""
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigurationError) as raised:
        load_settings()
    message = str(raised.value)
    assert message.startswith(f"{named}:"), message
    assert "\n" not in message
    assert len(message) > len(named) + 5
    if "SECRET" in variable:
        assert value not in message  # a secret is never echoed


@pytest.mark.parametrize(
    ("missing", "present"),
    [
        ("TADAMON_WHATSAPP_PHONE_NUMBER_ID",
         {"TADAMON_WHATSAPP_APP_SECRET": "s", "TADAMON_WHATSAPP_VERIFY_TOKEN": "v"}),
        ("TADAMON_WHATSAPP_PHONE_NUMBER_ID", {}),
        ("TADAMON_WHATSAPP_APP_SECRET",
         {"TADAMON_WHATSAPP_PHONE_NUMBER_ID": "1", "TADAMON_WHATSAPP_VERIFY_TOKEN": "v"}),
        ("TADAMON_WHATSAPP_APP_SECRET",  # set but empty is not a secret
         {"TADAMON_WHATSAPP_PHONE_NUMBER_ID": "1", "TADAMON_WHATSAPP_APP_SECRET": "",
          "TADAMON_WHATSAPP_VERIFY_TOKEN": "v"}),
        ("TADAMON_WHATSAPP_VERIFY_TOKEN",
         {"TADAMON_WHATSAPP_PHONE_NUMBER_ID": "1", "TADAMON_WHATSAPP_APP_SECRET": "s"}),
    ],
)
def test_whatsapp_token_needs_the_rest_of_the_whatsapp_settings(
    monkeypatch: pytest.MonkeyPatch, missing: str, present: dict[str, str]
) -> None:
    """A WhatsApp token without its companions names the first missing variable."""
    monkeypatch.setenv("TADAMON_WHATSAPP_TOKEN", "EAAG")
    for name, value in present.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigurationError) as raised:
        load_settings()
    message = str(raised.value)
    assert message.startswith(f"{missing}:"), message
    assert "TADAMON_WHATSAPP_TOKEN" in message
    assert "\n" not in message


def test_whatsapp_settings_without_token_keep_whatsapp_off(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Companion variables alone are fine: WhatsApp stays off until the token is set."""
    monkeypatch.setenv("TADAMON_WHATSAPP_PHONE_NUMBER_ID", "1065")
    settings = load_settings()
    assert settings.whatsapp_token is None


def test_empty_values_mean_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    """`VAR=` (as compose files write it) is the same as not setting VAR."""
    for name in ("TADAMON_REDIS_URL", "TADAMON_CATALOGUE", "TADAMON_TELEGRAM_TOKEN",
                 "TADAMON_TELEGRAM_API_BASE", "TADAMON_TELEGRAM_WEBHOOK_URL",
                 "TADAMON_TELEGRAM_WEBHOOK_SECRET", "TADAMON_WHATSAPP_TOKEN",
                 "TADAMON_WHATSAPP_APP_SECRET", "TADAMON_WHATSAPP_API_BASE",
                 "TADAMON_ORGANIZERS", "TADAMON_QUIET_HOURS"):
        monkeypatch.setenv(name, "")
    settings = load_settings()
    assert settings.redis_url is None
    assert settings.catalogue is None
    assert settings.telegram_token is None
    assert settings.telegram_api_base == "https://api.telegram.org"
    assert settings.telegram_webhook_url is None
    assert len(settings.telegram_webhook_secret.get_secret_value()) >= 32
    assert settings.whatsapp_token is None
    assert settings.whatsapp_app_secret is None
    assert settings.whatsapp_api_base == "https://graph.facebook.com/v23.0"
    assert settings.organizers == ()
    assert settings.quiet_hours == (dt.time(22), dt.time(8))


def test_load_settings_takes_overrides() -> None:
    """Keyword overrides (used by the CLI and tests) go through the same checks."""
    assert load_settings(http_port=8181).http_port == 8181
    with pytest.raises(ConfigurationError, match=r"^TADAMON_HTTP_PORT:"):
        load_settings(http_port=-3)


def test_metrics_token_is_read_and_kept_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    assert _settings().metrics_token is None  # unset: /metrics is open
    monkeypatch.setenv("TADAMON_METRICS_TOKEN", "")
    assert _settings().metrics_token is None
    monkeypatch.setenv("TADAMON_METRICS_TOKEN", "scrape-me-7f3a")
    settings = _settings()
    assert settings.metrics_token is not None
    assert settings.metrics_token.get_secret_value() == "scrape-me-7f3a"
    assert "scrape-me-7f3a" not in repr(settings)


def test_a_secret_with_a_trailing_newline_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """Validation matches the whole value: `$` alone would let "...\\n" through."""
    monkeypatch.setenv("TADAMON_TELEGRAM_WEBHOOK_SECRET", "s3cret_Token-1\n")
    with pytest.raises(ConfigurationError) as raised:
        load_settings()
    assert str(raised.value).startswith("TADAMON_TELEGRAM_WEBHOOK_SECRET:")
