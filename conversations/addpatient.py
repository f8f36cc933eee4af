"""/addpatient: add a patient you access — by asking their owner, or by creating a dependent.

Steps: name → relationship (→ a word for Other) → access level → role → own login?
  yes → their portal email → summary → the owner is asked to approve
  no  → their date of birth → summary → their account is created and, acting as its
        holder, the creator is granted the access chosen (one Confirm).
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from telegram import InlineKeyboardButton, Update
from telegram.ext import (
    CallbackQueryHandler,
    CommandHandler,
    ConversationHandler,
    MessageHandler,
    TypeHandler,
    filters,
)

from bot import access, labels
from bot.access import AccessRequest, RequestOutcome
from bot.context import PortalContext
from bot.dates import parse_date, plausible_birth_date
from bot.i18n import Translator
from bot.text import clean_email, clean_name, esc
from conversations import Flows, conversation
from handlers.choices import level_question, role_question
from handlers.guard import require_patient
from handlers.menu import CB_ADD_PATIENT, home_keyboard
from handlers.send import edit_in_place, keyboard
from storage import clock
from storage.vocabulary import Level, Relationship, Role

(
    NAME,
    RELATIONSHIP,
    RELATIONSHIP_OTHER,
    LEVEL,
    ROLE,
    OWN_LOGIN,
    EMAIL,
    DOB,
    CONFIRM,
    CHANGE,
) = range(10)

CB_BACK = "add:back"
CB_CANCEL = "add:cancel"
CB_CONFIRM = "add:ok"
CB_CHANGE = "add:chg"
CB_REL = "add:rel:"
CB_LEVEL = "add:lvl:"
CB_ROLE = "add:role:"
CB_OWN = "add:own:"
CB_EDIT = "add:edit:"
DRAFT = "addpatient"
OTHER_MAX = 40

Callback = Callable[[Update, PortalContext], Awaitable[int]]


def _draft(context: PortalContext) -> dict[str, Any]:
    return context.user_data.setdefault(DRAFT, {})  # type: ignore[union-attr,no-any-return]


def _nav(_: Translator, *, back: bool = True) -> list[InlineKeyboardButton]:
    row = [InlineKeyboardButton(_("◀ Back"), callback_data=CB_BACK)] if back else []
    return [*row, InlineKeyboardButton(_("Cancel"), callback_data=CB_CANCEL)]


async def _prompt(
    update: Update, text: str, rows: Sequence[Sequence[InlineKeyboardButton]]
) -> None:
    """Edit the prompt in place after a tap; reply below a typed answer."""
    markup = keyboard(rows)
    query = update.callback_query
    if query is not None:
        await query.answer()
        await edit_in_place(query, text, markup)
        return
    assert update.effective_message is not None
    await update.effective_message.reply_text(text, reply_markup=markup)


async def _tr(update: Update, context: PortalContext) -> Translator:
    return (context.caller)._


def _after(context: PortalContext, next_step: Callback) -> Callback:
    """While changing one answer from the summary, go back to the summary instead."""
    return show_summary if _draft(context).get("editing") else next_step


# --- Steps ----------------------------------------------------------------------------


async def start_adding(update: Update, context: PortalContext) -> int:
    """/addpatient or the home button: checks sign-in; asks the patient's name."""
    if await require_patient(update, context) is None:
        return ConversationHandler.END
    # Identifies this draft's confirmation, so a retried Confirm cannot create twice.
    context.user_data[DRAFT] = {"key": secrets.token_hex(16)}  # type: ignore[index]
    return await ask_name(update, context)


async def ask_name(update: Update, context: PortalContext) -> int:
    """Asks the full name of the patient to add."""
    _ = await _tr(update, context)
    await _prompt(
        update,
        _("Add a patient you access.\n\nWhat is the patient's full name?"),
        [_nav(_, back=False)],
    )
    return NAME


async def save_name(update: Update, context: PortalContext) -> int:
    """Stores the name; asks the relationship."""
    _ = await _tr(update, context)
    name = clean_name(update.effective_message.text if update.effective_message else None)
    if name is None:
        await _prompt(
            update,
            _("Please type the patient's full name: up to 100 letters, no special characters."),
            [_nav(_, back=False)],
        )
        return NAME
    _draft(context)["name"] = name
    return await _after(context, ask_relationship)(update, context)


async def ask_relationship(update: Update, context: PortalContext) -> int:
    """Asks how the patient is related to the user."""
    _ = await _tr(update, context)
    values = list(Relationship)
    buttons = [
        InlineKeyboardButton(labels.relationship(_, r), callback_data=CB_REL + r.value)
        for r in values
    ]
    rows = [buttons[i : i + 3] for i in range(0, len(buttons), 3)]
    await _prompt(
        update,
        _("What is <b>{name}</b> to you?").format(name=esc(_draft(context).get("name", ""))),
        [*rows, _nav(_)],
    )
    return RELATIONSHIP


async def save_relationship(update: Update, context: PortalContext) -> int:
    """Stores the relationship; asks a word for Other, else the access level."""
    query = update.callback_query
    assert query is not None and query.data is not None
    value = query.data.removeprefix(CB_REL)
    if value not in Relationship.__members__.values():
        return await ask_relationship(update, context)
    draft = _draft(context)
    draft["relationship"] = value
    draft.pop("other", None)
    if value == Relationship.OTHER:
        return await ask_other(update, context)
    return await _after(context, ask_level)(update, context)


async def ask_other(update: Update, context: PortalContext) -> int:
    """Asks for the relationship in the user's own word."""
    _ = await _tr(update, context)
    await _prompt(
        update,
        _("In a word or two, what is {name} to you? For example: grandmother.").format(
            name=esc(_draft(context).get("name", ""))
        ),
        [_nav(_)],
    )
    return RELATIONSHIP_OTHER


async def save_other(update: Update, context: PortalContext) -> int:
    """Stores the relationship word; asks the access level."""
    _ = await _tr(update, context)
    word = clean_name(update.effective_message.text if update.effective_message else None)
    if word is None or len(word) > OTHER_MAX:
        await _prompt(update, _("Please type a short word, up to 40 characters."), [_nav(_)])
        return RELATIONSHIP_OTHER
    _draft(context)["other"] = word
    return await _after(context, ask_level)(update, context)


async def ask_level(update: Update, context: PortalContext) -> int:
    """Asks the access level, explaining both."""
    _ = await _tr(update, context)
    text, choices = level_question(_, _("Which access do you need?"), CB_LEVEL)
    await _prompt(update, text, [choices, _nav(_)])
    return LEVEL


async def save_level(update: Update, context: PortalContext) -> int:
    """Stores the access level; asks the role."""
    query = update.callback_query
    assert query is not None and query.data is not None
    code = query.data.removeprefix(CB_LEVEL)
    level = {"c": Level.CLINICAL, "a": Level.ADMINISTRATIVE}.get(code)
    if level is None:
        return await ask_level(update, context)
    _draft(context)["level"] = level.value
    return await _after(context, ask_role)(update, context)


async def ask_role(update: Update, context: PortalContext) -> int:
    """Asks the role, explaining both."""
    _ = await _tr(update, context)
    text, choices = role_question(_, _("What may you do in their portal?"), CB_ROLE)
    await _prompt(update, text, [choices, _nav(_)])
    return ROLE


async def save_role(update: Update, context: PortalContext) -> int:
    """Stores the role; asks whether the patient has their own login."""
    query = update.callback_query
    assert query is not None and query.data is not None
    role = {"v": Role.VIEW, "e": Role.EDIT}.get(query.data.removeprefix(CB_ROLE))
    if role is None:
        return await ask_role(update, context)
    _draft(context)["role"] = role.value
    return await _after(context, ask_own_login)(update, context)


async def ask_own_login(update: Update, context: PortalContext) -> int:
    """Asks whether the patient already has a portal login of their own."""
    _ = await _tr(update, context)
    name = esc(_draft(context).get("name", ""))
    rows = [
        [InlineKeyboardButton(_("Yes, they have a login"), callback_data=CB_OWN + "y")],
        [InlineKeyboardButton(_("No, create an account for them"), callback_data=CB_OWN + "n")],
        _nav(_),
    ]
    await _prompt(
        update,
        _(
            "Does {name} have their own portal login?\n\n"
            "Choose No for a child or anyone who doesn't use the portal themselves: "
            "I'll create an account for them that you look after."
        ).format(name=name),
        rows,
    )
    return OWN_LOGIN


async def save_own_login(update: Update, context: PortalContext) -> int:
    """Stores the answer; asks their portal email (yes) or date of birth (no)."""
    query = update.callback_query
    assert query is not None and query.data is not None
    answer = query.data.removeprefix(CB_OWN)
    if answer not in ("y", "n"):
        return await ask_own_login(update, context)
    draft = _draft(context)
    draft["own"] = answer == "y"
    return await (ask_email if draft["own"] else ask_dob)(update, context)


async def ask_email(update: Update, context: PortalContext) -> int:
    """Asks the email of the patient's portal account."""
    _ = await _tr(update, context)
    await _prompt(
        update,
        _("What email does {name} use for their portal login?").format(
            name=esc(_draft(context).get("name", ""))
        ),
        [_nav(_)],
    )
    return EMAIL


async def save_email(update: Update, context: PortalContext) -> int:
    """Stores the email; shows the summary."""
    _ = await _tr(update, context)
    email = clean_email(update.effective_message.text if update.effective_message else None)
    if email is None:
        await _prompt(
            update,
            _("That doesn't look like an email address. Please check it and type it again."),
            [_nav(_)],
        )
        return EMAIL
    draft = _draft(context)
    draft["email"] = email
    draft.pop("dob", None)
    return await show_summary(update, context)


async def ask_dob(update: Update, context: PortalContext) -> int:
    """Asks the new dependent's date of birth."""
    _ = await _tr(update, context)
    await _prompt(
        update,
        _("What is {name}'s date of birth? For example {example}.").format(
            name=esc(_draft(context).get("name", "")), example=_.date_example()
        ),
        [_nav(_)],
    )
    return DOB


async def save_dob(update: Update, context: PortalContext) -> int:
    """Stores the date of birth; shows the summary."""
    _ = await _tr(update, context)
    text = update.effective_message.text if update.effective_message else ""
    dob = parse_date(text or "", _.format_locale)
    if dob is None or not plausible_birth_date(dob, clock.today()):
        await _prompt(
            update,
            _("I couldn't read that as a date of birth. Please type it like {example}.").format(
                example=_.date_example()
            ),
            [_nav(_)],
        )
        return DOB
    draft = _draft(context)
    draft["dob"] = dob.isoformat()
    draft.pop("email", None)
    return await show_summary(update, context)


async def show_summary(update: Update, context: PortalContext) -> int:
    """Shows every answer with Confirm / Change / Cancel; nothing is written yet."""
    _ = await _tr(update, context)
    draft = _draft(context)
    draft.pop("editing", None)
    if not all(k in draft for k in ("name", "relationship", "level", "role", "own")) or (
        "email" not in draft and "dob" not in draft
    ):
        return await ask_name(update, context)  # a step was lost (e.g. a very old button)
    name = esc(draft["name"])
    lines = [
        _("Please check:"),
        "",
        _("Name: {name}").format(name=name),
        _("Relationship: {relationship}").format(
            relationship=esc(labels.relationship(_, draft["relationship"], draft.get("other")))
        ),
        _("Access: {level} — {explained}").format(
            level=labels.level(_, draft["level"]),
            explained=labels.level_explained(_, draft["level"]),
        ),
        _("Role: {role} — {explained}").format(
            role=labels.role(_, draft["role"]), explained=labels.role_explained(_, draft["role"])
        ),
    ]
    if draft["own"]:
        lines += [
            _("Their login: {email}").format(email=esc(draft["email"])),
            "",
            _("When you confirm, I'll ask the owner of that login to approve."),
        ]
    else:
        born = dt.date.fromisoformat(draft["dob"])
        lines += [
            _("Born: {date}").format(date=_.date(born)),
            "",
            _(
                "When you confirm, I'll create {name}'s account and, acting for {name} as the "
                "account holder, grant you this access. Until {name} has their own login, "
                "you decide who else may see their records."
            ).format(name=name),
        ]
    rows = [
        [InlineKeyboardButton(_("✅ Confirm"), callback_data=CB_CONFIRM)],
        [
            InlineKeyboardButton(_("✏️ Change"), callback_data=CB_CHANGE),
            InlineKeyboardButton(_("Cancel"), callback_data=CB_CANCEL),
        ],
    ]
    await _prompt(update, "\n".join(lines), rows)
    return CONFIRM


async def ask_what_to_change(update: Update, context: PortalContext) -> int:
    """Offers each answer to change; the summary comes back afterwards."""
    _ = await _tr(update, context)
    fields = [
        ("name", _("Name")),
        ("relationship", _("Relationship")),
        ("level", _("Access level")),
        ("role", _("Role")),
        ("own", _("Own login")),
    ]
    rows = [[InlineKeyboardButton(label, callback_data=CB_EDIT + key)] for key, label in fields]
    rows.append([InlineKeyboardButton(_("◀ Back"), callback_data=CB_BACK)])
    await _prompt(update, _("What would you like to change?"), rows)
    return CHANGE


async def change_field(update: Update, context: PortalContext) -> int:
    """Asks the chosen step again, then returns to the summary."""
    query = update.callback_query
    assert query is not None and query.data is not None
    step = _CHANGE_STEPS.get(query.data.removeprefix(CB_EDIT))
    if step is None:
        return await ask_what_to_change(update, context)
    _draft(context)["editing"] = True
    return await step(update, context)


async def confirm(update: Update, context: PortalContext) -> int:
    """Writes it: sends the request, or creates the dependent with the user's access."""
    who = context.caller
    _ = who._
    draft = _draft(context)
    if who.patient is None or "own" not in draft:
        return await start_adding(update, context)
    request = AccessRequest(
        subject_name=draft["name"],
        relationship=Relationship(draft["relationship"]),
        relationship_other=draft.get("other"),
        level=Level(draft["level"]),
        role=Role(draft["role"]),
    )
    p = context.portal
    if not draft["own"]:
        dependent, grant = await access.create_dependent(
            p.db,
            who.patient.id,
            draft["name"],
            dt.date.fromisoformat(draft["dob"]),
            request,
            idempotency_key=draft.get("key"),
        )
        context.user_data.pop(DRAFT, None)  # type: ignore[union-attr]
        text = _(
            "Done: <b>{name}</b>'s account is ready, and you can access it ({access}).\n\n"
            "Until {name} has their own login, you decide who else may see their records."
        ).format(
            name=esc(dependent.full_name),
            access=labels.access_summary(_, grant.level, grant.role),
        )
        await _prompt(update, text, home_keyboard(_).inline_keyboard)
        return ConversationHandler.END
    result = await access.request_by_email(
        p.db, who.patient.id, draft["email"], request, p.settings.invite_ttl_days
    )
    if result.outcome is RequestOutcome.SELF:
        await _prompt(
            update,
            _("That's the email of your own login. Please type the other patient's email."),
            [_nav(_)],
        )
        return EMAIL
    context.user_data.pop(DRAFT, None)  # type: ignore[union-attr]
    if result.outcome is RequestOutcome.DUPLICATE:
        await _prompt(
            update,
            _(
                "You already have access to this patient, or a request to them is waiting "
                "for a decision. Nothing new was sent."
            ),
            home_keyboard(_).inline_keyboard,
        )
        return ConversationHandler.END
    await _prompt(
        update,
        _(
            "Thank you. If this email belongs to a portal account, its owner has been asked to "
            "approve your request. I'll let you know when they decide."
        )
        + " "
        + _.ngettext(
            "The request expires after {days} day.",
            "The request expires after {days} days.",
            p.settings.invite_ttl_days,
        ).format(days=p.settings.invite_ttl_days),
        home_keyboard(_).inline_keyboard,
    )
    return ConversationHandler.END


async def cancel_adding(update: Update, context: PortalContext) -> int:
    """/cancel or Cancel: drops the draft; nothing was sent or created."""
    _ = await _tr(update, context)
    context.user_data.pop(DRAFT, None)  # type: ignore[union-attr]
    await _prompt(update, _("Cancelled. Nothing was sent or created."), [])
    return ConversationHandler.END


async def adding_timed_out(update: Update, context: PortalContext) -> int:
    """Ten minutes without an answer: says the request was not sent."""
    _ = await _tr(update, context)
    context.user_data.pop(DRAFT, None)  # type: ignore[union-attr]
    if update.effective_chat:
        await context.bot.send_message(
            update.effective_chat.id,
            _(
                "You didn't finish adding a patient, so nothing was sent or created. "
                "Send /addpatient to start again."
            ),
        )
    return ConversationHandler.END


async def command_mid_flow(update: Update, context: PortalContext) -> None:
    """Another command while adding: says how to go on or stop."""
    _ = await _tr(update, context)
    assert update.effective_message is not None
    await update.effective_message.reply_text(
        _("You're adding a patient. Answer the question above, or send /cancel to stop.")
    )


def _choose_buttons(ask: Callback) -> Callback:
    async def remind(update: Update, context: PortalContext) -> int:
        _ = await _tr(update, context)
        assert update.effective_message is not None
        await update.effective_message.reply_text(_("Please choose one of the buttons."))
        return await ask(update, context)

    remind.__doc__ = f"Typed text where buttons are expected: re-asks ({ask.__name__})."
    return remind


def _back_from(state: int) -> Callback:
    """The Back button of one step."""

    async def go_back(update: Update, context: PortalContext) -> int:
        draft = _draft(context)
        draft.pop("editing", None)
        previous: dict[int, Callback] = {
            RELATIONSHIP: ask_name,
            RELATIONSHIP_OTHER: ask_relationship,
            LEVEL: ask_other
            if draft.get("relationship") == Relationship.OTHER
            else ask_relationship,
            ROLE: ask_level,
            OWN_LOGIN: ask_role,
            EMAIL: ask_own_login,
            DOB: ask_own_login,
            CHANGE: show_summary,
            CONFIRM: ask_email if draft.get("own") else ask_dob,
        }
        return await previous.get(state, ask_name)(update, context)

    go_back.__doc__ = "Back: asks the step before this one again."
    return go_back


_CHANGE_STEPS: dict[str, Callback] = {
    "name": ask_name,
    "relationship": ask_relationship,
    "level": ask_level,
    "role": ask_role,
    "own": ask_own_login,
}


def addpatient_conversation(flows: Flows) -> ConversationHandler:  # type: ignore[type-arg]
    typed = filters.TEXT & ~filters.COMMAND
    back = {s: CallbackQueryHandler(_back_from(s), pattern=f"^{CB_BACK}$") for s in range(10)}

    def buttons(state: int, pattern: str, callback: Callback, ask: Callback) -> list[Any]:
        return [
            CallbackQueryHandler(callback, pattern=pattern),
            back[state],
            MessageHandler(typed, _choose_buttons(ask)),
        ]

    return conversation(
        flows,
        name="addpatient",
        entry_points=[
            CommandHandler("addpatient", start_adding),
            CallbackQueryHandler(start_adding, pattern=f"^{CB_ADD_PATIENT}$"),
        ],
        states={
            NAME: [MessageHandler(typed, save_name)],
            RELATIONSHIP: buttons(RELATIONSHIP, f"^{CB_REL}", save_relationship, ask_relationship),
            RELATIONSHIP_OTHER: [MessageHandler(typed, save_other), back[RELATIONSHIP_OTHER]],
            LEVEL: buttons(LEVEL, f"^{CB_LEVEL}", save_level, ask_level),
            ROLE: buttons(ROLE, f"^{CB_ROLE}", save_role, ask_role),
            OWN_LOGIN: buttons(OWN_LOGIN, f"^{CB_OWN}", save_own_login, ask_own_login),
            EMAIL: [MessageHandler(typed, save_email), back[EMAIL]],
            DOB: [MessageHandler(typed, save_dob), back[DOB]],
            CONFIRM: [
                CallbackQueryHandler(confirm, pattern=f"^{CB_CONFIRM}$"),
                CallbackQueryHandler(ask_what_to_change, pattern=f"^{CB_CHANGE}$"),
                back[CONFIRM],
                MessageHandler(typed, _choose_buttons(show_summary)),
            ],
            CHANGE: buttons(CHANGE, f"^{CB_EDIT}", change_field, ask_what_to_change),
            ConversationHandler.TIMEOUT: [TypeHandler(Update, adding_timed_out)],
        },
        fallbacks=[
            CommandHandler("cancel", cancel_adding),
            CallbackQueryHandler(cancel_adding, pattern=f"^{CB_CANCEL}$"),
            MessageHandler(filters.COMMAND, command_mid_flow),
        ],
        allow_reentry=True,
    )
