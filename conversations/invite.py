"""/invite: a practitioner invites a patient — full name, date of birth, optional email."""

from __future__ import annotations

import datetime as dt
from urllib.parse import quote

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.ext import (
    CallbackQueryHandler,
    CommandHandler,
    ConversationHandler,
    MessageHandler,
    TypeHandler,
    filters,
)

from bot import invitations
from bot.context import PortalContext
from bot.dates import parse_date, plausible_birth_date
from bot.i18n import Translator
from bot.qr import qr_png
from bot.text import clean_email, clean_name, esc
from bot.tokens import deep_link
from conversations import Flows, conversation
from handlers.language import practitioner_menu
from storage import clock

NAME, DOB, EMAIL = range(3)

CB_BACK = "inv:back"
CB_SKIP = "inv:skip"
CB_CANCEL = "inv:cancel"
DATA_KEY = "invite_draft"


def _buttons(_: Translator, *, back: bool = True, skip: bool = False) -> InlineKeyboardMarkup:
    row = []
    if back:
        row.append(InlineKeyboardButton(_("◀ Back"), callback_data=CB_BACK))
    if skip:
        row.append(InlineKeyboardButton(_("Skip"), callback_data=CB_SKIP))
    row.append(InlineKeyboardButton(_("Cancel"), callback_data=CB_CANCEL))
    return InlineKeyboardMarkup([row])


def _draft(context: PortalContext) -> dict[str, str]:
    return context.user_data.setdefault(DATA_KEY, {})  # type: ignore[union-attr,no-any-return]


async def _say(update: Update, text: str, markup: InlineKeyboardMarkup | None = None) -> None:
    """Reply to a typed answer, or below the prompt whose button was tapped."""
    if update.callback_query:
        await update.callback_query.answer()
        # The tapped prompt has been answered: its buttons should not linger.
        await update.callback_query.edit_message_reply_markup(None)
    message = update.effective_message
    assert message is not None
    await message.reply_text(text, reply_markup=markup)


async def start_invite(update: Update, context: PortalContext) -> int:
    """Checks the sender is a practitioner; asks the patient's full name."""
    who = context.caller
    _ = who._
    if not who.is_practitioner:
        await _say(
            update,
            _(
                "Sorry, only practitioners of the practice can send invites. If you need an "
                "invite yourself, please ask the reception."
            ),
        )
        return ConversationHandler.END
    context.user_data[DATA_KEY] = {}  # type: ignore[index]
    await practitioner_menu(context, who)
    await _say(
        update,
        _("Let's invite a patient. What is the patient's full name?"),
        _buttons(_, back=False),
    )
    return NAME


async def save_name(update: Update, context: PortalContext) -> int:
    """Stores the patient's name; asks their date of birth."""
    _ = (context.caller)._
    name = clean_name(update.effective_message.text if update.effective_message else None)
    if name is None:
        await _say(
            update,
            _("Please type the patient's full name (up to 100 characters)."),
            _buttons(_, back=False),
        )
        return NAME
    _draft(context)["name"] = name
    return await ask_dob(update, context)


async def ask_dob(update: Update, context: PortalContext) -> int:
    """Asks the patient's date of birth (also where Back from the email step lands)."""
    _ = (context.caller)._
    await _say(
        update,
        _(
            "What is {name}'s date of birth? For example {example}. "
            "The patient will be asked for it when they open the link."
        ).format(name=esc(_draft(context).get("name", "")), example=_.date_example()),
        _buttons(_),
    )
    return DOB


async def back_to_name(update: Update, context: PortalContext) -> int:
    """Back from the date of birth: asks the name again."""
    _ = (context.caller)._
    await _say(update, _("What is the patient's full name?"), _buttons(_, back=False))
    return NAME


async def save_dob(update: Update, context: PortalContext) -> int:
    """Stores the date of birth; asks for an optional email."""
    _ = (context.caller)._
    text = update.effective_message.text if update.effective_message else ""
    dob = parse_date(text or "", _.format_locale)
    if dob is None or not plausible_birth_date(dob, clock.today()):
        await _say(
            update,
            _("I couldn't read that as a date of birth. Please type it like {example}.").format(
                example=_.date_example()
            ),
            _buttons(_),
        )
        return DOB
    _draft(context)["dob"] = dob.isoformat()
    return await ask_email(update, context)


async def ask_email(update: Update, context: PortalContext) -> int:
    """Asks the patient's email, which can be skipped."""
    _ = (context.caller)._
    await _say(
        update,
        _(
            "What is the patient's email address? It links this invite to their existing "
            "record if they have one. Tap Skip if you don't have it."
        ),
        _buttons(_, skip=True),
    )
    return EMAIL


async def save_email(update: Update, context: PortalContext) -> int:
    """Stores the email; creates the invite and sends the link."""
    _ = (context.caller)._
    text = update.effective_message.text if update.effective_message else None
    email = clean_email(text)
    if email is None:
        await _say(
            update,
            _("That doesn't look like an email address. Please check it, or tap Skip."),
            _buttons(_, skip=True),
        )
        return EMAIL
    _draft(context)["email"] = email
    return await send_invite(update, context)


async def skip_email(update: Update, context: PortalContext) -> int:
    """No email; creates the invite and sends the link."""
    _draft(context).pop("email", None)
    return await send_invite(update, context)


async def send_invite(update: Update, context: PortalContext) -> int:
    """Creates the invite; sends the link, its QR code and a share button."""
    who = context.caller
    _ = who._
    draft = _draft(context)
    p = context.portal
    try:
        new = await invitations.create_invite(
            p.db,
            invitations.InviteRequest(
                full_name=draft["name"],
                date_of_birth=dt.date.fromisoformat(draft["dob"]),
                email=draft.get("email"),
            ),
            ttl_days=p.settings.invite_ttl_days,
            invited_by=who.telegram_user_id,
        )
    except invitations.InviteRefused:
        # Only a differing date can be refused here: this flow always asks for one.
        return await date_of_birth_differs(update, context)
    context.user_data.pop(DATA_KEY, None)  # type: ignore[union-attr]
    link = deep_link(context.bot.username, new.token)
    share = (
        "https://t.me/share/url?url="
        + quote(link, safe="")
        + "&text="
        + quote(_("Your invite to the patient portal"), safe="")
    )
    text = _(
        "Invite for <b>{name}</b> is ready. Send them this link; it works once and until {date}:"
    ).format(name=esc(new.patient.full_name), date=_.day_of(new.invite.expires_at, p.settings.tz))
    if new.reused_patient:
        text += "\n" + _(
            "This email already belongs to a patient, so the link signs in to that record."
        )
    await _say(
        update,
        text + "\n\n" + link,
        InlineKeyboardMarkup([[InlineKeyboardButton(_("Share the link"), url=share)]]),
    )
    assert update.effective_chat is not None
    await context.bot.send_photo(
        update.effective_chat.id,
        photo=qr_png(link),
        caption=_("Or let {name} scan this code with their phone's camera.").format(
            name=esc(new.patient.full_name)
        ),
    )
    return ConversationHandler.END


async def date_of_birth_differs(update: Update, context: PortalContext) -> int:
    """The email's patient has another date of birth on record: asks it again."""
    _ = (context.caller)._
    _draft(context).pop("dob", None)
    await _say(
        update,
        _(
            "The patient with this email has a different date of birth on record, so I "
            "haven't created the invite. Please check the date of birth with the patient and "
            "type it again (for example {example}); I'll ask for the email again after it. "
            "Or tap Cancel."
        ).format(example=_.date_example()),
        _buttons(_),
    )
    return DOB


async def cancel_invite(update: Update, context: PortalContext) -> int:
    """/cancel or the Cancel button: drops the draft, nothing is created."""
    _ = (context.caller)._
    context.user_data.pop(DATA_KEY, None)  # type: ignore[union-attr]
    await _say(update, _("Invite cancelled. Nothing was created."))
    return ConversationHandler.END


async def button_expected(update: Update, context: PortalContext) -> int | None:
    """A command other than /cancel mid-flow: remind instead of silently ignoring it."""
    _ = (context.caller)._
    await _say(
        update, _("You're in the middle of an invite. Answer the question above, or send /cancel.")
    )
    return None


async def invite_timed_out(update: Update, context: PortalContext) -> int:
    """Ten minutes without an answer: drops the draft and says so."""
    _ = (context.caller)._
    context.user_data.pop(DATA_KEY, None)  # type: ignore[union-attr]
    if update.effective_chat:
        await context.bot.send_message(
            update.effective_chat.id, _("The invite timed out and was not created.")
        )
    return ConversationHandler.END


def invite_conversation(flows: Flows) -> ConversationHandler:  # type: ignore[type-arg]
    typed = filters.TEXT & ~filters.COMMAND
    cancel_button = CallbackQueryHandler(cancel_invite, pattern=f"^{CB_CANCEL}$")
    return conversation(
        flows,
        name="invite",
        entry_points=[CommandHandler("invite", start_invite)],
        states={
            NAME: [MessageHandler(typed, save_name)],
            DOB: [
                MessageHandler(typed, save_dob),
                CallbackQueryHandler(back_to_name, pattern=f"^{CB_BACK}$"),
            ],
            EMAIL: [
                MessageHandler(typed, save_email),
                CallbackQueryHandler(skip_email, pattern=f"^{CB_SKIP}$"),
                CallbackQueryHandler(ask_dob, pattern=f"^{CB_BACK}$"),
            ],
            ConversationHandler.TIMEOUT: [TypeHandler(Update, invite_timed_out)],
        },
        fallbacks=[
            CommandHandler("cancel", cancel_invite),
            cancel_button,
            MessageHandler(filters.COMMAND, button_expected),
        ],
        allow_reentry=True,
    )
