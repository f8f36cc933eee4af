"""What every handler needs: the database, the settings, and who is asking in which language."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from telegram import Update
from telegram.ext import ContextTypes

from bot.i18n import Translator, translator
from bot.outbox import Sender
from bot.settings import Settings
from storage import Database, logins
from storage.models import Login, Patient

PORTAL_KEY = "portal"
USER_LANGUAGE_KEY = "language"  # a choice made with /language before signing in


@dataclass(frozen=True)
class Portal:
    settings: Settings
    db: Database
    sender: Sender  # the outbox's (bot/outbox.py)


class _HasBotData(Protocol):
    @property
    def bot_data(self) -> dict[Any, Any]: ...


def portal(holder: _HasBotData) -> Portal:
    """From a callback context or the Application itself."""
    return holder.bot_data[PORTAL_KEY]  # type: ignore[no-any-return]


@dataclass(frozen=True)
class Caller:
    """The Telegram user behind an update, as the database knows them right now."""

    telegram_user_id: int
    login: Login | None
    patient: Patient | None
    is_practitioner: bool
    _: Translator

    @property
    def signed_in(self) -> bool:
        return self.patient is not None


async def caller(update: Update, context: ContextTypes.DEFAULT_TYPE) -> Caller:
    """Looked up on every update, never cached: a revoked login must stop working at once."""
    p = portal(context)
    user = update.effective_user
    if user is None:  # channel posts and the like; the bot does not serve them
        return Caller(0, None, None, False, translator(None, p.settings.default_locale))
    async with p.db.read() as conn:
        found = await logins.identity(conn, user.id)
    login, patient, is_practitioner = found.login, found.patient, found.is_practitioner
    chosen = context.user_data.get(USER_LANGUAGE_KEY) if context.user_data is not None else None
    language = (login.locale if login and login.locale else None) or chosen or user.language_code
    return Caller(
        user.id,
        login,
        patient,
        is_practitioner,
        translator(language, p.settings.default_locale),
    )


async def set_language(context: ContextTypes.DEFAULT_TYPE, who: Caller, language: str) -> None:
    """Stored with the login, so messages others trigger reach this user in it too."""
    if context.user_data is not None:
        context.user_data[USER_LANGUAGE_KEY] = language
    if who.login is None:
        return
    async with portal(context).db.statement() as conn:
        await logins.set_locale(conn, who.telegram_user_id, language)


async def recipient_language(holder: _HasBotData, telegram_user_id: int) -> Translator:
    """The language of a Telegram user we write to outside any update of theirs."""
    p = portal(holder)
    async with p.db.read() as conn:
        login = await logins.get(conn, telegram_user_id)
    return translator(login.locale if login else None, p.settings.default_locale)
