"""The bot speaks about patients only in a private chat with that patient.

Whatever comes from a group, a supergroup or a channel stops at `private_chats_only`,
before any other handler could show a patient's data, start or advance a flow, or sign
someone in. At most it gets "Please message me directly"; an invite link seen there is
burned; a group the bot is added to is told so once and left.
"""

from __future__ import annotations

import logging
import re

from telegram import ChatMember, InlineKeyboardMarkup, Message, Update
from telegram.constants import ChatType, MessageEntityType
from telegram.error import TelegramError
from telegram.ext import ApplicationHandlerStop

from bot import invitations
from bot.context import PortalContext
from bot.i18n import Translator
from bot.keyboards import Button, Keyboard, ptb_markup
from storage import outbox

log = logging.getLogger(__name__)

_JOINED = (ChatMember.MEMBER, ChatMember.ADMINISTRATOR)
_START = re.compile(r"^/start(?:@\w+)?$", re.IGNORECASE)
_LINK_PAYLOAD = re.compile(r"[?&]start=([A-Za-z0-9_-]{1,64})")


async def private_chats_only(update: Update, context: PortalContext) -> None:
    """First for every update: one from a chat that is not private goes no further."""
    chat = update.effective_chat
    if chat is not None and chat.type == ChatType.PRIVATE:
        return
    try:
        await _turn_away(update, context)
    except Exception:  # a failed reply must not let the update through to the handlers
        log.exception(
            "could not turn away update %s from a chat that is not private", update.update_id
        )
    try:
        # The update ends here, before the group that sends what it queued (a burned
        # invite's notice to the practitioner): that goes now, or from the outbox later.
        await context.portal.sender.deliver(outbox.collected())
    except Exception:
        log.exception("could not send what update %s queued", update.update_id)
    raise ApplicationHandlerStop


def please_message_me(_: Translator) -> str:
    return _("Please message me directly: I only talk about patients in a private chat.")


def _direct_button(_: Translator, bot_username: str) -> InlineKeyboardMarkup:
    # PTB's types: a reply in a group goes by PTB's reply_text (it quotes there).
    return ptb_markup(
        Keyboard([[Button(_("Open a private chat"), url=f"https://t.me/{bot_username}")]])
    )


async def _turn_away(update: Update, context: PortalContext) -> None:
    if update.my_chat_member is not None:
        await _leave_when_added(update, context)
        return
    if update.callback_query is not None:
        who = context.caller
        await update.callback_query.answer(please_message_me(who._), show_alert=True)
        return
    message = update.message
    if message is None or message.chat.type == ChatType.CHANNEL:
        return  # a channel's post: nobody to answer
    await _burn_exposed_invites(update, context, message)
    if _command_for(message, context.bot.username):
        who = context.caller
        await message.reply_text(
            please_message_me(who._), reply_markup=_direct_button(who._, context.bot.username)
        )
    # Anything else is the group's own conversation: not ours to answer.


def _command_for(message: Message, bot_username: str) -> bool:
    """A command addressed to this bot: /cmd, or /cmd@this_bot (not /cmd@another_bot)."""
    text = message.text or ""
    entity = message.entities[0] if message.entities else None
    if entity is None or entity.type != MessageEntityType.BOT_COMMAND or entity.offset != 0:
        return False
    _command, _at, target = text[1 : entity.length].partition("@")
    return not target or target.lower() == bot_username.lower()


def _exposed_payloads(message: Message) -> set[str]:
    """Possible invite tokens in a group message: "/start <token>" (to any bot), and the
    start= of any deep link."""
    text = message.text or message.caption or ""
    words = text.split()
    found = set(_LINK_PAYLOAD.findall(text))
    if len(words) > 1 and _START.match(words[0]):
        found.add(words[1])
    return found


async def _burn_exposed_invites(update: Update, context: PortalContext, message: Message) -> None:
    """An invite seen by others in a group is burned: nobody signs in with it, and the
    practitioner who sent it is asked for a new one."""
    sender = message.from_user.id if message.from_user else 0
    db = context.portal.db
    for payload in _exposed_payloads(message):
        # The practitioner's notice is queued with the burn (handlers/notices.py).
        await invitations.burn_exposed(db, payload, sender, message.chat.type)


async def _leave_when_added(update: Update, context: PortalContext) -> None:
    """Added to a group: say once why not, then leave. A channel is left without a word."""
    change = update.my_chat_member
    assert change is not None
    if change.new_chat_member.status not in _JOINED:
        return  # the bot left or was removed: nothing to do
    chat = change.chat
    if chat.type != ChatType.CHANNEL:
        who = context.caller
        _ = who._
        try:
            await context.bot.send_message(
                chat.id,
                _(
                    "I only work in private chats, so that patients' information stays "
                    "private. Please message me directly. I'm leaving this group now."
                ),
                reply_markup=_direct_button(_, context.bot.username),
            )
        except TelegramError as exc:  # e.g. no right to post: leave all the same
            log.warning("could not say goodbye to a group: %s", type(exc).__name__)
    await context.bot.leave_chat(chat.id)
