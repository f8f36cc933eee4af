"""The context every handler gets (PTB's contexttypesbot pattern): the portal's shared
objects, typed, and who is asking, looked up once per update.

The caller is read by the update's first handler group (bot/app.py's -5,
conversations/timeouts.py), in the same read as the user's stored state, so each update
costs one read before its handlers however many of them look at the caller. Nothing keeps
it beyond the update: a revoked login stops working on the very next one. Handlers that
change who the caller is (signing in or out, choosing a language) call `refresh_caller`
so the rest of the update sees the change.
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
from storage.db import Leadership, Reads
from storage.models import Identity, Login, Patient

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

    @property
    def sign_in(self) -> tuple[Login, Patient] | None:
        """Their login and its patient, as read for this update (bot/access.py SignedIn)."""
        if self.login is None or self.patient is None:
            return None
        return self.login, self.patient


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
            # Only updates reach handlers after bot/app.py's group -5; an error
            # handler or a job resolves its own.
            raise RuntimeError("the caller is resolved once per update, before any handler")
        return self._caller

    @property
    def _(self) -> Translator:
        """The caller's language."""
        return self.caller._

    def resolve_caller(self, update: Update, found: Identity | None) -> Caller:
        """The caller as the update's first read found them (read_identity), once the
        user's stored state is in `user_data` (a language chosen before signing in)."""
        self._caller = caller_from(self, update, found)
        return self._caller

    async def refresh_caller(self, update: Update) -> Caller:
        """Look the caller up again: after this update signed them in or out, or changed
        their language."""
        self._caller = await lookup_caller(self, update)
        return self._caller


async def read_identity(conn: Reads, update: Update) -> Identity | None:
    """Read on every update, never kept: a revoked login must stop working at once. None
    for an update of nobody."""
    user = update.effective_user
    return None if user is None else await logins.identity(conn, user.id)


async def lookup_caller(context: PortalContext, update: Update) -> Caller:
    """The caller, in a read of its own (refresh_caller, the error handler)."""
    async with context.portal.db.read() as conn:
        found = await read_identity(conn, update)
    return caller_from(context, update, found)


def caller_from(context: PortalContext, update: Update, found: Identity | None) -> Caller:
    """Who is asking, from their identity as just read (read_identity)."""
    default_locale = context.portal.settings.default_locale
    user = update.effective_user
    if user is None or found is None:  # channel posts and the like; the bot does not serve them
        return Caller(0, None, None, False, translator(None, default_locale))
    login, patient, is_practitioner = found.login, found.patient, found.is_practitioner
    chosen = context.user_data.get(USER_LANGUAGE_KEY) if context.user_data is not None else None
    language = (login.locale if login and login.locale else None) or chosen or user.language_code
    return Caller(
        user.id,
        login,
        patient,
        is_practitioner,
        translator(language, default_locale),
        found.has_held,
    )


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
