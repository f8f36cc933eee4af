"""The context every handler gets (PTB's contexttypesbot pattern): the portal's shared
objects, typed, and who is asking, looked up once per update.

The caller is resolved by one early handler group (`resolve_caller`, bot/app.py) after the
private-chat gate, so each update costs one identity read however many handlers look at
it. Nothing keeps it beyond the update: a revoked login stops working on the very next one.
Handlers that change who the caller is (signing in or out, choosing a language) call
`refresh_caller` so the rest of the update sees the change.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from telegram import Update
from telegram.ext import Application, CallbackContext, ExtBot, JobQueue

from bot.i18n import Translator, translator
from bot.outbox import Sender
from bot.settings import Settings
from storage import Database, logins
from storage.db import Leadership
from storage.models import Login, Patient

USER_LANGUAGE_KEY = "language"  # a choice made with /language before signing in


@dataclass(frozen=True)
class Portal:
    """What every handler shares: the settings, the database and the outbox's sender."""

    settings: Settings
    db: Database
    sender: Sender  # the outbox's (bot/outbox.py)

    @property
    def lead(self) -> Leadership:
        """Whether this worker does the timed work for all of them (the sender's)."""
        return self.sender.lead


@dataclass(frozen=True)
class Caller:
    """The Telegram user behind an update, as the database knows them right now."""

    telegram_user_id: int
    login: Login | None
    patient: Patient | None
    is_practitioner: bool
    _: Translator
    # The outbox holds messages for them (they had blocked the bot; handlers/notices.py).
    has_held: bool = False

    @property
    def signed_in(self) -> bool:
        return self.patient is not None


class BotData:
    """The Application's shared objects: PTB builds one per Application (`bot_data`)."""

    portal: Portal  # set by bot/app.py right after the Application is built

    def __init__(self) -> None:
        # Practitioners whose chat already has its own command menu (handlers/language.py).
        self.practitioner_menus: set[int] = set()


class PortalContext(CallbackContext[ExtBot[None], dict[Any, Any], dict[Any, Any], BotData]):
    def __init__(
        self,
        application: Application[Any, Any, Any, Any, Any, Any],
        chat_id: int | None = None,
        user_id: int | None = None,
    ) -> None:
        super().__init__(application, chat_id=chat_id, user_id=user_id)
        self._app: PortalApp = application
        self._caller: Caller | None = None

    @property
    def application(self) -> PortalApp:  # type: ignore[override]  # PTB: ST unbound here
        """The Application as bot/app.py builds it. PTB annotates this property with its
        self-type variable, which mypy cannot bind on a property: the Application came
        out with an unknown context type, which nothing typed could take."""
        return self._app

    @property
    def portal(self) -> Portal:
        return self.bot_data.portal

    @property
    def caller(self) -> Caller:
        """Who sent this update, as the database knew them when the update arrived."""
        if self._caller is None:
            # Only updates reach handlers after bot/app.py's caller group; an error
            # handler or a job resolves its own.
            raise RuntimeError("the caller is resolved once per update, before any handler")
        return self._caller

    @property
    def _(self) -> Translator:
        """The caller's language."""
        return self.caller._

    async def refresh_caller(self, update: Update) -> Caller:
        """Look the caller up again: after this update signed them in or out, or changed
        their language."""
        self._caller = await lookup_caller(self, update)
        return self._caller


async def lookup_caller(context: PortalContext, update: Update) -> Caller:
    """Read on every update, never kept: a revoked login must stop working at once."""
    p = context.portal
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
        found.has_held,
    )


async def resolve_caller(update: Update, context: PortalContext) -> None:
    """Once per update, before any handler that serves it (bot/app.py)."""
    await context.refresh_caller(update)


async def set_language(context: PortalContext, update: Update, language: str) -> None:
    """Stored with the login, so messages others trigger reach this user in it too."""
    if context.user_data is not None:
        context.user_data[USER_LANGUAGE_KEY] = language
    who = context.caller
    if who.login is not None:
        async with context.portal.db.statement() as conn:
            await logins.set_locale(conn, who.telegram_user_id, language)
    await context.refresh_caller(update)


async def recipient_language(p: Portal, telegram_user_id: int) -> Translator:
    """The language of a Telegram user we write to outside any update of theirs."""
    async with p.db.read() as conn:
        login = await logins.get(conn, telegram_user_id)
    return translator(login.locale if login else None, p.settings.default_locale)


def portal(app: PortalApp) -> Portal:
    """The shared objects, from the Application (start-up, shutdown, the tests)."""
    return app.bot_data.portal


# The Application as the bot builds it (bot/app.py).
PortalApp = Application[
    ExtBot[None], PortalContext, dict[Any, Any], dict[Any, Any], BotData, JobQueue[PortalContext]
]
