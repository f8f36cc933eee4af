"""/language, and the bot's command menu in each language."""

from __future__ import annotations

import asyncio
import dataclasses
import logging

from telegram import BotCommand, BotCommandScopeChat, BotCommandScopeDefault, Update
from telegram.error import TelegramError

from bot import i18n
from bot.callbacks import ChooseLanguage
from bot.context import Caller, PortalApp, PortalContext, portal, set_language
from bot.i18n import LANGUAGES, Translator, translator
from bot.keyboards import Button, Keyboard
from handlers.send import edit_in_place, send_to_chat

log = logging.getLogger(__name__)

# Telegram's language_code for setMyCommands is a two-letter ISO 639-1 code.
_TELEGRAM_CODE = {"en": "en", "zh_Hans": "zh", "vi": "vi", "ar": "ar"}


def commands(_: Translator, *, practitioner: bool = False) -> list[BotCommand]:
    items = [
        ("start", _("Home menu")),
        ("switch", _("Choose whose portal to see")),
        ("appointments", _("Appointments")),
        ("invoices", _("Invoices")),
        ("records", _("Clinical records")),
        ("details", _("Personal details")),
        ("addpatient", _("Add a patient you access")),
        ("access", _("Who accesses whom; requests")),
        ("activity", _("Who looked at your records")),
        ("notifications", _("Reminders and notices")),
        ("language", _("Change language")),
        ("help", _("What I can do")),
        ("cancel", _("Stop what you're doing")),
        ("signout", _("Sign this Telegram account out of the portal")),
    ]
    if practitioner:
        items.insert(1, ("invite", _("Invite a patient")))
        items.insert(2, ("unlink", _("Sign a patient's Telegram account out")))
    return [BotCommand(name, description) for name, description in items]


async def set_command_menus(app: PortalApp) -> None:
    """The menu in every shipped language; practitioners also see /invite and /unlink in
    their chat.
    Sent side by side, once the bot is running (bot/app.py)."""
    p = portal(app)
    bot = app.bot
    default = translator(None, p.settings.default_locale)
    await asyncio.gather(
        bot.set_my_commands(commands(default), scope=BotCommandScopeDefault()),
        *(
            bot.set_my_commands(
                commands(translator(language)),
                scope=BotCommandScopeDefault(),
                language_code=_TELEGRAM_CODE[language],
            )
            for language in LANGUAGES
        ),
    )


async def practitioner_menu(context: PortalContext, who: Caller, *, again: bool = False) -> None:
    """Practitioners also see /invite and /unlink, in their chat only. Set once they have talked to
    the bot (Telegram refuses a chat scope before that), and again after /language."""
    done = context.bot_data.practitioner_menus
    if not who.is_practitioner or (who.telegram_user_id in done and not again):
        return
    try:
        await context.bot.set_my_commands(
            commands(who._, practitioner=True), scope=BotCommandScopeChat(who.telegram_user_id)
        )
        done.add(who.telegram_user_id)
    except TelegramError as exc:
        log.info("no practitioner menu for one chat: %s", type(exc).__name__)


async def choose_language(update: Update, context: PortalContext) -> None:
    """/language: one button per language, each in its own words."""
    who = context.caller
    rows = [
        [
            Button(
                ("● " if code == who._.language else "") + name,
                data=ChooseLanguage(code).encode(),
            )
        ]
        for code, name in LANGUAGES.items()
    ]
    await send_to_chat(update, who._("Which language would you like?"), Keyboard(rows))


async def save_language(update: Update, context: PortalContext) -> None:
    """A language button: stored with the login (or for this chat before sign-in)."""
    query = update.callback_query
    assert query is not None and query.data is not None
    tapped = ChooseLanguage.parse(query.data)
    if tapped is None or tapped.code not in LANGUAGES:
        await query.answer(context.caller._("This button is no longer active."), show_alert=True)
        return
    language = tapped.code
    await set_language(context, update, language)
    _ = i18n.translator(language, context.portal.settings.default_locale)
    await practitioner_menu(context, dataclasses.replace(context.caller, _=_), again=True)
    await query.answer()
    await edit_in_place(
        query, _("Done: I'll speak {language} from now on.").format(language=LANGUAGES[language])
    )
