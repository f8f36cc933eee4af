"""Configuration from the environment (prefix PORTAL_)."""

from __future__ import annotations

import re
import zoneinfo
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import parse_qsl, urlsplit

from babel import Locale, UnknownLocaleError
from pydantic import Field, SecretStr, ValidationError, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

TELEGRAM_API_BASE_URL = "https://api.telegram.org/bot"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PORTAL_", extra="ignore")

    bot_token: SecretStr | None = None
    api_base_url: str = TELEGRAM_API_BASE_URL
    db_path: Path = Path("./portal.db")
    # postgresql://user:password@host:port/db (or ...@/db?host=/socket/dir): PostgreSQL
    # instead of SQLite at db_path. A secret: it may hold the password.
    database_url: SecretStr | None = None
    default_locale: str = "en_AU"
    timezone: str = "Australia/Sydney"
    invite_ttl_days: int = Field(default=14, ge=1, le=365)
    practice_name: str = "our practice"
    # Checked on every webhook request (run --webhook-url); a random one per run if unset.
    webhook_secret: SecretStr | None = None
    # How long a half-finished flow waits for the next answer before it is dropped.
    conversation_timeout: float = Field(default=600, gt=0, le=86400)
    # How long before an appointment its reminders go: "24h,2h"; empty turns them off.
    reminders: str = "24h,2h"
    # The practice's safeguarding policy (bot/policy.py, `python -m bot policy`). An age of
    # 0 turns that rule off; the others must rise in this order.
    teen_age: int = Field(default=12, ge=0, le=30)
    own_login_age: int = Field(default=14, ge=0, le=30)
    adult_age: int = Field(default=18, ge=0, le=30)
    proxy_term_days: int = Field(default=548, ge=0, le=3650)  # 0: access between adults never ends
    # Days before each change that both sides are told, e.g. "30,7"; empty: not told.
    notice_days: Annotated[tuple[int, ...], NoDecode] = (30, 7)

    @field_validator("api_base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value

    @field_validator("database_url")
    @classmethod
    def _postgres_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value().strip():
            return None
        check_database_url(value.get_secret_value().strip())
        return SecretStr(value.get_secret_value().strip())

    @property
    def database(self) -> str | Path:
        """What storage.open_database() opens: the PostgreSQL URL, else the SQLite file."""
        return self.database_url.get_secret_value() if self.database_url else self.db_path

    @property
    def database_name(self) -> str:
        """The database, for messages: never the URL's password."""
        if self.database_url is None:
            return str(self.db_path)
        url = urlsplit(self.database_url.get_secret_value())
        host = url.hostname or dict(parse_qsl(url.query)).get("host", "")
        return f"PostgreSQL database {url.path.lstrip('/')!r} on {host or 'localhost'}"

    @field_validator("default_locale")
    @classmethod
    def _known_locale(cls, value: str) -> str:
        try:
            Locale.parse(value)
        except (ValueError, UnknownLocaleError) as exc:
            raise ValueError(f"unknown locale {value!r}") from exc
        return value

    @field_validator("webhook_secret")
    @classmethod
    def _telegram_secret(cls, value: SecretStr | None) -> SecretStr | None:
        # Telegram allows 1-256 characters of A-Z a-z 0-9 _ - in a webhook secret token.
        if value is not None and not re.fullmatch(
            r"[A-Za-z0-9_-]{1,256}", value.get_secret_value()
        ):
            raise ValueError("use 1-256 characters from A-Z a-z 0-9 _ -")
        return value

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    @field_validator("reminders")
    @classmethod
    def _reminder_offsets(cls, value: str) -> str:
        parse_offsets(value)  # ValueError, with the part that is wrong
        return value

    @property
    def reminder_offsets(self) -> tuple[int, ...]:
        """Seconds before an appointment each reminder goes, longest first."""
        return parse_offsets(self.reminders)

    @field_validator("own_login_age", "adult_age")
    @classmethod
    def _ages_rise(cls, value: int, info: ValidationInfo) -> int:
        # Fields are validated in the order they are declared: the ages before this one
        # are in info.data (unless they were invalid themselves).
        if value == 0:
            return value
        names = {"teen_age": "PORTAL_TEEN_AGE", "own_login_age": "PORTAL_OWN_LOGIN_AGE"}
        for field, variable in names.items():
            if field == info.field_name:
                break
            earlier = info.data.get(field)
            if earlier and value <= earlier:
                raise ValueError(
                    f"{value} must be above {variable} ({earlier}): the ages rise in the order "
                    "teen, own login, adult (0 turns one off)"
                )
        return value

    @field_validator("notice_days", mode="before")
    @classmethod
    def _days_list(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        try:
            return tuple(int(part) for part in value.split(",") if part.strip())
        except ValueError:
            raise ValueError(f"{value!r} is not a list of days such as 30,7") from None

    @field_validator("notice_days")
    @classmethod
    def _days_make_sense(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if any(not 1 <= days <= 365 for days in value):
            raise ValueError("each number of days must be 1-365")
        return tuple(sorted(set(value), reverse=True))

    def require_token(self) -> str:
        """The token, or SettingsError: only commands that talk to Telegram need it."""
        if self.bot_token is None or not self.bot_token.get_secret_value().strip():
            raise SettingsError("PORTAL_BOT_TOKEN is not set (get one from @BotFather)")
        return self.bot_token.get_secret_value().strip()

    @property
    def file_base_url(self) -> str:
        """Telegram serves files under /file/bot<token>; emulators mirror that layout."""
        base = self.api_base_url
        return base[: -len("/bot")] + "/file/bot" if base.endswith("/bot") else base

    @property
    def tz(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.timezone)


_UNITS = {"m": 60, "h": 3600, "d": 86400}
MAX_OFFSET_S = 14 * 86400


def parse_offsets(text: str) -> tuple[int, ...]:
    """Reminder offsets such as "24h,2h" (or "30m", "1d") in seconds, longest first; an
    empty text is none. ValueError names the part that is not one."""
    offsets: list[int] = []
    for part in (p.strip().lower() for p in text.split(",")):
        if not part and not text.strip():
            continue
        match = re.fullmatch(r"(\d{1,4})\s*([mhd])", part)
        if match is None:
            raise ValueError(f"{part!r} is not a time before the appointment, such as 24h or 30m")
        seconds = int(match[1]) * _UNITS[match[2]]
        if not 0 < seconds <= MAX_OFFSET_S:
            raise ValueError(f"{part!r} must be more than 0 and at most 14 days")
        if seconds in offsets:
            raise ValueError(f"{part!r} is given twice")
        offsets.append(seconds)
    return tuple(sorted(offsets, reverse=True))


def check_database_url(url: str) -> None:
    """ValueError, without the password, unless `url` names a PostgreSQL database."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  # raises ValueError for a port that is not a number
    except ValueError:
        raise ValueError("not a URL such as postgresql://user:password@host:5432/db") from None
    if parts.scheme not in ("postgresql", "postgres"):
        raise ValueError(f"must start with postgresql:// (not {parts.scheme or 'nothing'}://)")
    if not parts.path.strip("/") or "/" in parts.path.strip("/"):
        raise ValueError("must name the database, e.g. postgresql://user:password@host:5432/db")
    query = dict(parse_qsl(parts.query))
    if not parts.hostname and not query.get("host"):
        raise ValueError("must name a host, or a socket directory as ?host=/run/postgresql")


class SettingsError(Exception):
    """One line naming the variable that is missing or malformed."""


def describe(error: ValidationError) -> str:
    first = error.errors()[0]
    field = str(first["loc"][0]) if first["loc"] else "?"
    variable = f"PORTAL_{field.upper()}"
    if first["type"] == "missing":
        return f"{variable} is not set"
    return f"{variable} is invalid: {first['msg']}"


def load_settings(**overrides: Any) -> Settings:
    """Read the environment; raise SettingsError with one readable line on any problem.
    `overrides` win over the environment, and are validated as it is (hence Any)."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise SettingsError(describe(exc)) from None
