"""Share a dependent you hold with another patient: their email, the access, one Confirm.
They get Accept / Decline; the reply to you is the same whatever the email."""

from __future__ import annotations

from telegram import Update
from telegram.ext import CallbackQueryHandler, MessageHandler

from bot import access, labels
from bot.callbacks import ConfirmSharing, FlowName, OfferLevel, OfferRole, ShareDependent
from bot.context import PortalContext
from bot.keyboards import Button
from bot.text import clean_email, esc
from conversations import END, TYPED, Conversation, Draft, Flow, Flows, tapped, typed
from handlers.choices import level_question, role_question
from handlers.guard import require_patient
from storage.vocabulary import Level, Role

EMAIL, LEVEL, ROLE, CONFIRM = range(4)


class SharingDraft(Draft):
    """The offer so far: nothing is sent before Confirm."""

    dependent: int  # the patient shared, whom the caller holds
    name: str  # their name, as shown when sharing began
    email: str | None = None  # the login of the patient offered access
    level: Level | None = None
    role: Role | None = None


SHARING = Flow(
    "share",
    SharingDraft,
    said_on_cancel=lambda _: _("Cancelled. Nothing was sent."),
    said_on_timeout=lambda _: _("Sharing timed out. Nothing was sent."),
    said_mid_flow=lambda _: _(
        "You're sharing a patient's account. Answer the question above, or send /cancel to stop."
    ),
    buttons=FlowName.SHARE,
)


async def start_sharing(update: Update, context: PortalContext) -> int:
    """'Share <name> with someone': checks you hold them; asks the other patient's email."""
    patient = await require_patient(update, context)
    choice = tapped(update, ShareDependent)
    if patient is None or choice is None or update.callback_query is None:
        return END
    dependent = await access.held_dependent(context.portal.db, patient.id, choice.dependent)
    if dependent is None:
        text = context.caller._("You no longer hold this account.")
        await update.callback_query.answer(text, show_alert=True)
        return END
    SHARING.begin(context, SharingDraft(dependent=dependent.id, name=dependent.full_name))
    return await ask_email(update, context)


async def ask_email(update: Update, context: PortalContext) -> int:
    """Asks the email of the other patient's login."""
    _ = context.caller._
    draft = SHARING.draft(context)
    if draft is None:
        return await SHARING.lost(update, context)
    text = _("Share {name} with another patient. What email does their portal login use?")
    await SHARING.prompt(update, text.format(name=esc(draft.name)), [SHARING.nav(_, back=False)])
    return EMAIL


async def save_email(update: Update, context: PortalContext) -> int:
    """Stores the email; asks the access level."""
    _ = context.caller._
    draft = SHARING.draft(context)
    if draft is None:
        return await SHARING.lost(update, context)
    email = clean_email(typed(update))
    if email is None:
        text = _("That doesn't look like an email address. Please check it and type it again.")
        await SHARING.prompt(update, text, [SHARING.nav(_, back=False)])
        return EMAIL
    draft.email = email
    return await ask_level(update, context)


async def ask_level(update: Update, context: PortalContext) -> int:
    """Asks the access level to offer."""
    _ = context.caller._
    text, choices = level_question(_, _("Which access should they have?"), OfferLevel)
    await SHARING.prompt(update, text, [choices, SHARING.nav(_)])
    return LEVEL


async def save_level(update: Update, context: PortalContext) -> int:
    """Stores the level; asks the role."""
    draft, choice = SHARING.draft(context), tapped(update, OfferLevel)
    if draft is None or choice is None:
        return await SHARING.lost(update, context)
    draft.level = choice.level
    return await ask_role(update, context)


async def ask_role(update: Update, context: PortalContext) -> int:
    """Asks the role to offer."""
    _ = context.caller._
    text, choices = role_question(_, _("What may they do?"), OfferRole)
    await SHARING.prompt(update, text, [choices, SHARING.nav(_)])
    return ROLE


async def save_role(update: Update, context: PortalContext) -> int:
    """Stores the role; shows the offer with Confirm."""
    draft, choice = SHARING.draft(context), tapped(update, OfferRole)
    if draft is None or choice is None:
        return await SHARING.lost(update, context)
    draft.role = choice.role
    return await show_offer(update, context)


async def show_offer(update: Update, context: PortalContext) -> int:
    """Shows the offer with Confirm; nothing is sent yet."""
    _ = context.caller._
    draft = SHARING.draft(context)
    if draft is None or draft.email is None or draft.level is None or draft.role is None:
        return await SHARING.lost(update, context)
    text = _("Offer access to <b>{name}</b> ({access}) to the portal login {email}?").format(
        name=esc(draft.name),
        access=labels.access_summary(_, draft.level, draft.role),
        email=esc(draft.email),
    )
    confirm = Button(_("✅ Confirm"), data=ConfirmSharing().encode())
    await SHARING.prompt(update, text, [[confirm], SHARING.nav(_)])
    return CONFIRM


async def confirm_share(update: Update, context: PortalContext) -> int:
    """Creates the offer (if that email has a portal) and tells the same either way."""
    _ = context.caller._
    draft = SHARING.draft(context)
    SHARING.drop(context)
    patient = await require_patient(update, context)
    if patient is None:
        return END
    if draft is None or draft.email is None or draft.level is None or draft.role is None:
        return await SHARING.lost(update, context)
    p = context.portal
    await access.offer_by_email(
        p.db,
        patient.id,
        draft.dependent,
        draft.email,
        draft.level,
        draft.role,
        p.settings.invite_ttl_days,
    )
    text = _(
        "Thank you. If this email belongs to a portal account, its owner has been asked to "
        "accept. I'll let you know when they decide."
    )
    await SHARING.prompt(update, text)
    return END


def share_conversation(flows: Flows) -> Conversation:
    return SHARING.conversation(
        flows,
        entry_points=[CallbackQueryHandler(start_sharing, pattern=ShareDependent.pattern())],
        states={
            EMAIL: [MessageHandler(TYPED, save_email)],
            LEVEL: [CallbackQueryHandler(save_level, pattern=OfferLevel.pattern())],
            ROLE: [CallbackQueryHandler(save_role, pattern=OfferRole.pattern())],
            CONFIRM: [CallbackQueryHandler(confirm_share, pattern=ConfirmSharing.pattern())],
        },
        back={LEVEL: ask_email, ROLE: ask_level, CONFIRM: ask_role},
    )
