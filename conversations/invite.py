"""/invite: a practitioner invites a patient — full name, date of birth, optional email."""

from __future__ import annotations

import datetime as dt
from urllib.parse import quote

from telegram import Update
from telegram.ext import CallbackQueryHandler, CommandHandler, MessageHandler

from bot import invitations
from bot.callbacks import FlowName, SkipEmail
from bot.context import PortalContext
from bot.dates import parse_date, plausible_birth_date
from bot.i18n import Translator
from bot.keyboards import Button
from bot.qr import qr_png
from bot.text import clean_email, clean_name, esc
from bot.tokens import deep_link
from conversations import END, TYPED, Conversation, Draft, Flow, Flows, typed
from handlers.language import practitioner_menu
from storage import clock

NAME, DOB, EMAIL = range(3)


class InviteDraft(Draft):
    """The invite so far: nothing is created before the last answer."""

    name: str | None = None
    dob: dt.date | None = None
    email: str | None = None


INVITING = Flow(
    "invite",
    InviteDraft,
    said_on_cancel=lambda _: _("Invite cancelled. Nothing was created."),
    said_on_timeout=lambda _: _("The invite timed out and was not created."),
    said_mid_flow=lambda _: _(
        "You're in the middle of an invite. Answer the question above, or send /cancel."
    ),
    buttons=FlowName.INVITE,
    in_place=False,
    draft_key="invite_draft",
)


def _draft(context: PortalContext) -> InviteDraft:
    return INVITING.draft(context) or INVITING.begin(context, InviteDraft())


async def start_invite(update: Update, context: PortalContext) -> int:
    """Checks the sender is a practitioner; asks the patient's full name."""
    who = context.caller
    _ = who._
    if not who.is_practitioner:
        text = _(
            "Sorry, only practitioners of the practice can send invites. If you need an "
            "invite yourself, please ask the reception."
        )
        await INVITING.prompt(update, text)
        return END
    INVITING.begin(context, InviteDraft())
    await practitioner_menu(context, who)
    text = _("Let's invite a patient. What is the patient's full name?")
    await INVITING.prompt(update, text, [INVITING.nav(_, back=False)])
    return NAME


async def save_name(update: Update, context: PortalContext) -> int:
    """Stores the patient's name; asks their date of birth."""
    _ = context.caller._
    name = clean_name(typed(update))
    if name is None:
        text = _("Please type the patient's full name (up to 100 characters).")
        await INVITING.prompt(update, text, [INVITING.nav(_, back=False)])
        return NAME
    _draft(context).name = name
    return await ask_dob(update, context)


async def ask_dob(update: Update, context: PortalContext) -> int:
    """Asks the patient's date of birth (also where Back from the email step lands)."""
    _ = context.caller._
    text = _(
        "What is {name}'s date of birth? For example {example}. "
        "The patient will be asked for it when they open the link."
    ).format(name=esc(_draft(context).name or ""), example=_.date_example())
    await INVITING.prompt(update, text, [INVITING.nav(_)])
    return DOB


async def back_to_name(update: Update, context: PortalContext) -> int:
    """Back from the date of birth: asks the name again."""
    _ = context.caller._
    await INVITING.prompt(
        update, _("What is the patient's full name?"), [INVITING.nav(_, back=False)]
    )
    return NAME


async def save_dob(update: Update, context: PortalContext) -> int:
    """Stores the date of birth; asks for an optional email."""
    _ = context.caller._
    dob = parse_date(typed(update) or "", _.format_locale)
    if dob is None or not plausible_birth_date(dob, clock.today()):
        text = _("I couldn't read that as a date of birth. Please type it like {example}.")
        await INVITING.prompt(update, text.format(example=_.date_example()), [INVITING.nav(_)])
        return DOB
    _draft(context).dob = dob
    return await ask_email(update, context)


def _skip(_: Translator) -> Button:
    return Button(_("Skip"), data=SkipEmail().encode())


async def ask_email(update: Update, context: PortalContext) -> int:
    """Asks the patient's email, which can be skipped."""
    _ = context.caller._
    text = _(
        "What is the patient's email address? It links this invite to their existing "
        "record if they have one. Tap Skip if you don't have it."
    )
    await INVITING.prompt(update, text, [INVITING.nav(_, extra=[_skip(_)])])
    return EMAIL


async def save_email(update: Update, context: PortalContext) -> int:
    """Stores the email; creates the invite and sends the link."""
    _ = context.caller._
    email = clean_email(typed(update))
    if email is None:
        text = _("That doesn't look like an email address. Please check it, or tap Skip.")
        await INVITING.prompt(update, text, [INVITING.nav(_, extra=[_skip(_)])])
        return EMAIL
    _draft(context).email = email
    return await send_invite(update, context)


async def skip_email(update: Update, context: PortalContext) -> int:
    """No email; creates the invite and sends the link."""
    _draft(context).email = None
    return await send_invite(update, context)


async def send_invite(update: Update, context: PortalContext) -> int:
    """Creates the invite; sends the link, its QR code and a share button."""
    _ = context.caller._
    draft = INVITING.draft(context)
    if draft is None or draft.name is None or draft.dob is None:
        return await INVITING.lost(update, context)
    request = invitations.InviteRequest(draft.name, draft.dob, draft.email)
    p = context.portal
    try:
        new = await invitations.create_invite(
            p.db,
            request,
            ttl_days=p.settings.invite_ttl_days,
            invited_by=context.caller.telegram_user_id,
        )
    except invitations.InviteRefused:
        # Only a differing date can be refused here: this flow always asks for one.
        return await date_of_birth_differs(update, context)
    INVITING.drop(context)
    link = deep_link(context.bot.username, new.token)
    share = Button(_("Share the link"), url=_share_url(_, link))
    await INVITING.prompt(update, _ready(_, new, context) + "\n\n" + link, [[share]])
    await _send_qr(update, context, link, new.patient.full_name)
    return END


def _ready(_: Translator, new: invitations.NewInvite, context: PortalContext) -> str:
    """The invite is ready: for whom, until when, and whether it signs in to a known record."""
    until = _.day_of(new.invite.expires_at, context.portal.settings.tz)
    text = _(
        "Invite for <b>{name}</b> is ready. Send them this link; it works once and until {date}:"
    ).format(name=esc(new.patient.full_name), date=until)
    if new.reused_patient:
        text += "\n" + _(
            "This email already belongs to a patient, so the link signs in to that record."
        )
    return text


def _share_url(_: Translator, link: str) -> str:
    """Telegram's share page for the link, with a line of text to go with it."""
    text = quote(_("Your invite to the patient portal"), safe="")
    return f"https://t.me/share/url?url={quote(link, safe='')}&text={text}"


async def _send_qr(update: Update, context: PortalContext, link: str, name: str) -> None:
    """The link as a QR code, for a patient at the desk."""
    assert update.effective_chat is not None
    caption = context.caller._("Or let {name} scan this code with their phone's camera.")
    await context.bot.send_photo(
        update.effective_chat.id, photo=qr_png(link), caption=caption.format(name=esc(name))
    )


async def date_of_birth_differs(update: Update, context: PortalContext) -> int:
    """The email's patient has another date of birth on record: asks it again."""
    _ = context.caller._
    _draft(context).dob = None
    text = _(
        "The patient with this email has a different date of birth on record, so I "
        "haven't created the invite. Please check the date of birth with the patient and "
        "type it again (for example {example}); I'll ask for the email again after it. "
        "Or tap Cancel."
    ).format(example=_.date_example())
    await INVITING.prompt(update, text, [INVITING.nav(_)])
    return DOB


def invite_conversation(flows: Flows) -> Conversation:
    return INVITING.conversation(
        flows,
        entry_points=[CommandHandler("invite", start_invite)],
        states={
            NAME: [MessageHandler(TYPED, save_name)],
            DOB: [MessageHandler(TYPED, save_dob)],
            EMAIL: [
                MessageHandler(TYPED, save_email),
                CallbackQueryHandler(skip_email, pattern=SkipEmail.pattern()),
            ],
        },
        back={DOB: back_to_name, EMAIL: ask_dob},
    )
