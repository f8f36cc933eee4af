"""/addpatient: add a patient you access — by asking their owner, or by creating a dependent.

Steps: name → relationship (→ a word for Other) → access level → role → own login?
  yes → their portal email → summary → the owner is asked to approve
  no  → their date of birth → summary → their account is created and, acting as its
        holder, the creator is granted the access chosen (one Confirm).
"""

from __future__ import annotations

import datetime as dt
import secrets

from pydantic import Field
from telegram import Update
from telegram.ext import CallbackQueryHandler, CommandHandler, MessageHandler

from bot import access, labels
from bot.access import AccessRequest, RequestOutcome
from bot.callbacks import (
    AddingAnswer,
    AddPatient,
    AnswerOwnLogin,
    AskForLevel,
    AskForRole,
    Callback,
    ChangeAnswer,
    ChangeAnswers,
    ChooseRelationship,
    ConfirmAdding,
    FlowName,
)
from bot.context import PortalContext
from bot.dates import parse_date, plausible_birth_date
from bot.i18n import Translator
from bot.keyboards import Button
from bot.text import clean_email, clean_name, esc
from conversations import (
    END,
    TYPED,
    Conversation,
    Draft,
    Flow,
    Flows,
    Handler,
    Step,
    tapped,
    typed,
)
from handlers.choices import level_question, role_question
from handlers.guard import require_patient
from handlers.menu import home_keyboard
from storage import clock
from storage.models import Patient
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

OTHER_MAX = 40


class AddingDraft(Draft):
    """The answers so far: nothing is written before Confirm."""

    # Identifies this draft's confirmation, so a retried Confirm cannot create twice.
    key: str = Field(default_factory=lambda: secrets.token_hex(16))
    name: str | None = None
    relationship: Relationship | None = None
    other: str | None = None  # the user's own word for Relationship.OTHER
    level: Level | None = None
    role: Role | None = None
    own: bool | None = None  # whether the patient has a portal login of their own
    email: str | None = None  # that login's email (own)
    dob: dt.date | None = None  # else the new account's date of birth
    editing: bool = False  # changing one answer from the summary

    def request(self) -> AccessRequest | None:
        """The access asked for, once every answer it needs is in."""
        if self.name is None or self.relationship is None:
            return None
        if self.level is None or self.role is None:
            return None
        return AccessRequest(self.name, self.relationship, self.other, self.level, self.role)

    def complete(self) -> bool:
        """Every answer the summary shows is in."""
        login_or_birth = self.email if self.own else self.dob
        return self.request() is not None and self.own is not None and login_or_birth is not None


ADDING = Flow(
    "addpatient",
    AddingDraft,
    said_on_cancel=lambda _: _("Cancelled. Nothing was sent or created."),
    said_on_timeout=lambda _: _(
        "You didn't finish adding a patient, so nothing was sent or created. "
        "Send /addpatient to start again."
    ),
    said_mid_flow=lambda _: _(
        "You're adding a patient. Answer the question above, or send /cancel to stop."
    ),
    buttons=FlowName.ADD_PATIENT,
)


def _draft(context: PortalContext) -> AddingDraft:
    """The answers so far; a fresh draft when they were lost (the summary asks again)."""
    return ADDING.draft(context) or ADDING.begin(context, AddingDraft())


def _name(context: PortalContext) -> str:
    return esc(_draft(context).name or "")


def _after(context: PortalContext, next_step: Step) -> Step:
    """While changing one answer from the summary, go back to the summary instead."""
    return show_summary if _draft(context).editing else next_step


def _button(label: str, data: Callback) -> Button:
    return Button(label, data=data.encode())


# --- Steps ----------------------------------------------------------------------------


async def start_adding(update: Update, context: PortalContext) -> int:
    """/addpatient or the home button: checks sign-in; asks the patient's name."""
    if await require_patient(update, context) is None:
        return END
    ADDING.begin(context, AddingDraft())
    return await ask_name(update, context)


async def ask_name(update: Update, context: PortalContext) -> int:
    """Asks the full name of the patient to add."""
    _ = context.caller._
    text = _("Add a patient you access.\n\nWhat is the patient's full name?")
    await ADDING.prompt(update, text, [ADDING.nav(_, back=False)])
    return NAME


async def save_name(update: Update, context: PortalContext) -> int:
    """Stores the name; asks the relationship."""
    _ = context.caller._
    name = clean_name(typed(update))
    if name is None:
        text = _("Please type the patient's full name: up to 100 letters, no special characters.")
        await ADDING.prompt(update, text, [ADDING.nav(_, back=False)])
        return NAME
    _draft(context).name = name
    return await _after(context, ask_relationship)(update, context)


async def ask_relationship(update: Update, context: PortalContext) -> int:
    """Asks how the patient is related to the user."""
    _ = context.caller._
    buttons = [_button(labels.relationship(_, r), ChooseRelationship(r)) for r in Relationship]
    rows = [buttons[i : i + 3] for i in range(0, len(buttons), 3)]
    text = _("What is <b>{name}</b> to you?").format(name=_name(context))
    await ADDING.prompt(update, text, [*rows, ADDING.nav(_)])
    return RELATIONSHIP


async def save_relationship(update: Update, context: PortalContext) -> int:
    """Stores the relationship; asks a word for Other, else the access level."""
    choice = tapped(update, ChooseRelationship)
    if choice is None:
        return await ask_relationship(update, context)
    draft = _draft(context)
    draft.relationship, draft.other = choice.relationship, None
    if choice.relationship is Relationship.OTHER:
        return await ask_other(update, context)
    return await _after(context, ask_level)(update, context)


async def ask_other(update: Update, context: PortalContext) -> int:
    """Asks for the relationship in the user's own word."""
    _ = context.caller._
    text = _("In a word or two, what is {name} to you? For example: grandmother.")
    await ADDING.prompt(update, text.format(name=_name(context)), [ADDING.nav(_)])
    return RELATIONSHIP_OTHER


async def save_other(update: Update, context: PortalContext) -> int:
    """Stores the relationship word; asks the access level."""
    _ = context.caller._
    word = clean_name(typed(update))
    if word is None or len(word) > OTHER_MAX:
        await ADDING.prompt(
            update, _("Please type a short word, up to 40 characters."), [ADDING.nav(_)]
        )
        return RELATIONSHIP_OTHER
    _draft(context).other = word
    return await _after(context, ask_level)(update, context)


async def ask_level(update: Update, context: PortalContext) -> int:
    """Asks the access level, explaining both."""
    _ = context.caller._
    text, choices = level_question(_, _("Which access do you need?"), AskForLevel)
    await ADDING.prompt(update, text, [choices, ADDING.nav(_)])
    return LEVEL


async def save_level(update: Update, context: PortalContext) -> int:
    """Stores the access level; asks the role."""
    choice = tapped(update, AskForLevel)
    if choice is None:
        return await ask_level(update, context)
    _draft(context).level = choice.level
    return await _after(context, ask_role)(update, context)


async def ask_role(update: Update, context: PortalContext) -> int:
    """Asks the role, explaining both."""
    _ = context.caller._
    text, choices = role_question(_, _("What may you do in their portal?"), AskForRole)
    await ADDING.prompt(update, text, [choices, ADDING.nav(_)])
    return ROLE


async def save_role(update: Update, context: PortalContext) -> int:
    """Stores the role; asks whether the patient has their own login."""
    choice = tapped(update, AskForRole)
    if choice is None:
        return await ask_role(update, context)
    _draft(context).role = choice.role
    return await _after(context, ask_own_login)(update, context)


async def ask_own_login(update: Update, context: PortalContext) -> int:
    """Asks whether the patient already has a portal login of their own."""
    _ = context.caller._
    rows = [
        [_button(_("Yes, they have a login"), AnswerOwnLogin(True))],
        [_button(_("No, create an account for them"), AnswerOwnLogin(False))],
        ADDING.nav(_),
    ]
    text = _(
        "Does {name} have their own portal login?\n\n"
        "Choose No for a child or anyone who doesn't use the portal themselves: "
        "I'll create an account for them that you look after."
    )
    await ADDING.prompt(update, text.format(name=_name(context)), rows)
    return OWN_LOGIN


async def save_own_login(update: Update, context: PortalContext) -> int:
    """Stores the answer; asks their portal email (yes) or date of birth (no)."""
    choice = tapped(update, AnswerOwnLogin)
    if choice is None:
        return await ask_own_login(update, context)
    _draft(context).own = choice.own
    return await (ask_email if choice.own else ask_dob)(update, context)


async def ask_email(update: Update, context: PortalContext) -> int:
    """Asks the email of the patient's portal account."""
    _ = context.caller._
    text = _("What email does {name} use for their portal login?")
    await ADDING.prompt(update, text.format(name=_name(context)), [ADDING.nav(_)])
    return EMAIL


async def save_email(update: Update, context: PortalContext) -> int:
    """Stores the email; shows the summary."""
    _ = context.caller._
    email = clean_email(typed(update))
    if email is None:
        text = _("That doesn't look like an email address. Please check it and type it again.")
        await ADDING.prompt(update, text, [ADDING.nav(_)])
        return EMAIL
    draft = _draft(context)
    draft.email, draft.dob = email, None
    return await show_summary(update, context)


async def ask_dob(update: Update, context: PortalContext) -> int:
    """Asks the new dependent's date of birth."""
    _ = context.caller._
    text = _("What is {name}'s date of birth? For example {example}.").format(
        name=_name(context), example=_.date_example()
    )
    await ADDING.prompt(update, text, [ADDING.nav(_)])
    return DOB


async def save_dob(update: Update, context: PortalContext) -> int:
    """Stores the date of birth; shows the summary."""
    _ = context.caller._
    dob = parse_date(typed(update) or "", _.format_locale)
    if dob is None or not plausible_birth_date(dob, clock.today()):
        text = _("I couldn't read that as a date of birth. Please type it like {example}.")
        await ADDING.prompt(update, text.format(example=_.date_example()), [ADDING.nav(_)])
        return DOB
    draft = _draft(context)
    draft.dob, draft.email = dob, None
    return await show_summary(update, context)


async def show_summary(update: Update, context: PortalContext) -> int:
    """Shows every answer with Confirm / Change / Cancel; nothing is written yet."""
    _ = context.caller._
    draft = _draft(context)
    draft.editing = False
    if not draft.complete():
        return await ask_name(update, context)  # a step was lost (e.g. a very old button)
    change = _button(_("✏️ Change"), ChangeAnswers())
    rows = [
        [_button(_("✅ Confirm"), ConfirmAdding())],
        ADDING.nav(_, back=False, extra=[change]),
    ]
    await ADDING.prompt(update, "\n".join(_summary(_, draft)), rows)
    return CONFIRM


def _summary(_: Translator, draft: AddingDraft) -> list[str]:
    """Every answer, and what Confirm will do."""
    request = draft.request()
    assert request is not None  # the caller checked the draft is complete
    level, role = request.level, request.role
    relationship = labels.relationship(_, request.relationship, request.relationship_other)
    return [
        _("Please check:"),
        "",
        _("Name: {name}").format(name=esc(request.subject_name)),
        _("Relationship: {relationship}").format(relationship=esc(relationship)),
        _("Access: {level} — {explained}").format(
            level=labels.level(_, level), explained=labels.level_explained(_, level)
        ),
        _("Role: {role} — {explained}").format(
            role=labels.role(_, role), explained=labels.role_explained(_, role)
        ),
        *_what_confirm_does(_, draft, esc(request.subject_name)),
    ]


def _what_confirm_does(_: Translator, draft: AddingDraft, name: str) -> list[str]:
    """Whose login is asked, or whose account is created."""
    if draft.own:
        return [
            _("Their login: {email}").format(email=esc(draft.email or "")),
            "",
            _("When you confirm, I'll ask the owner of that login to approve."),
        ]
    born = _.date(draft.dob) if draft.dob else ""
    return [
        _("Born: {date}").format(date=born),
        "",
        _(
            "When you confirm, I'll create {name}'s account and, acting for {name} as the "
            "account holder, grant you this access. Until {name} has their own login, "
            "you decide who else may see their records."
        ).format(name=name),
    ]


async def ask_what_to_change(update: Update, context: PortalContext) -> int:
    """Offers each answer to change; the summary comes back afterwards."""
    _ = context.caller._
    answers = [
        (AddingAnswer.NAME, _("Name")),
        (AddingAnswer.RELATIONSHIP, _("Relationship")),
        (AddingAnswer.LEVEL, _("Access level")),
        (AddingAnswer.ROLE, _("Role")),
        (AddingAnswer.OWN_LOGIN, _("Own login")),
    ]
    rows = [[_button(label, ChangeAnswer(answer))] for answer, label in answers]
    rows.append([ADDING.back_button(_)])
    await ADDING.prompt(update, _("What would you like to change?"), rows)
    return CHANGE


async def change_answer(update: Update, context: PortalContext) -> int:
    """Asks the chosen step again, then returns to the summary."""
    choice = tapped(update, ChangeAnswer)
    if choice is None:
        return await ask_what_to_change(update, context)
    _draft(context).editing = True
    return await _ASK_AGAIN[choice.answer](update, context)


_ASK_AGAIN: dict[AddingAnswer, Step] = {
    AddingAnswer.NAME: ask_name,
    AddingAnswer.RELATIONSHIP: ask_relationship,
    AddingAnswer.LEVEL: ask_level,
    AddingAnswer.ROLE: ask_role,
    AddingAnswer.OWN_LOGIN: ask_own_login,
}


async def confirm(update: Update, context: PortalContext) -> int:
    """✅ Confirm: creates the account, or asks the owner of that login to approve."""
    patient = await require_patient(update, context)
    if patient is None:
        return END
    draft = _draft(context)
    request = draft.request()
    if request is not None and draft.own is False and draft.dob is not None:
        return await _create_account(update, context, patient, request, draft.dob)
    if request is not None and draft.own and draft.email is not None:
        return await _ask_owner(update, context, patient, request, draft.email)
    return await start_adding(update, context)  # an answer was lost (e.g. a very old button)


async def _create_account(
    update: Update,
    context: PortalContext,
    patient: Patient,
    request: AccessRequest,
    born: dt.date,
) -> int:
    """Creates the dependent's account, with the access chosen for its creator."""
    _ = context.caller._
    key = _draft(context).key
    dependent, grant = await access.create_dependent(
        context.portal.db, patient.id, request.subject_name, born, request, idempotency_key=key
    )
    ADDING.drop(context)
    text = _(
        "Done: <b>{name}</b>'s account is ready, and you can access it ({access}).\n\n"
        "Until {name} has their own login, you decide who else may see their records."
    ).format(
        name=esc(dependent.full_name), access=labels.access_summary(_, grant.level, grant.role)
    )
    await ADDING.prompt(update, text, home_keyboard(_))
    return END


async def _ask_owner(
    update: Update, context: PortalContext, patient: Patient, request: AccessRequest, email: str
) -> int:
    """Asks the owner of that login, if there is one; the reply reads the same either way."""
    _ = context.caller._
    p = context.portal
    days = p.settings.invite_ttl_days
    result = await access.request_by_email(p.db, patient.id, email, request, days)
    if result.outcome is RequestOutcome.SELF:
        text = _("That's the email of your own login. Please type the other patient's email.")
        await ADDING.prompt(update, text, [ADDING.nav(_)])
        return EMAIL
    ADDING.drop(context)
    if result.outcome is RequestOutcome.DUPLICATE:
        text = _(
            "You already have access to this patient, or a request to them is waiting "
            "for a decision. Nothing new was sent."
        )
    else:
        text = _request_sent(_, days)
    await ADDING.prompt(update, text, home_keyboard(_))
    return END


def _request_sent(_: Translator, days: int) -> str:
    return (
        _(
            "Thank you. If this email belongs to a portal account, its owner has been asked to "
            "approve your request. I'll let you know when they decide."
        )
        + " "
        + _.ngettext(
            "The request expires after {days} day.",
            "The request expires after {days} days.",
            days,
        ).format(days=days)
    )


# --- ◀ Back ---------------------------------------------------------------------------


async def ask_relationship_again(update: Update, context: PortalContext) -> int:
    """◀ Back from the access level: the relationship, or its word for Other."""
    other = _draft(context).relationship is Relationship.OTHER
    return await (ask_other if other else ask_relationship)(update, context)


async def ask_login_or_birth_again(update: Update, context: PortalContext) -> int:
    """◀ Back from the summary: their login's email, or their date of birth."""
    return await (ask_email if _draft(context).own else ask_dob)(update, context)


def _walking_back_to(step: Step) -> Step:
    """◀ Back to `step`; from there the flow walks forward again, not to the summary."""

    async def went_back(update: Update, context: PortalContext) -> int:
        _draft(context).editing = False
        return await step(update, context)

    went_back.__doc__ = f"◀ Back: asks the step before again ({step.__name__})."
    return went_back


_BACK: dict[int, Step] = {
    RELATIONSHIP: ask_name,
    RELATIONSHIP_OTHER: ask_relationship,
    LEVEL: ask_relationship_again,
    ROLE: ask_level,
    OWN_LOGIN: ask_role,
    EMAIL: ask_own_login,
    DOB: ask_own_login,
    CHANGE: show_summary,
    CONFIRM: ask_login_or_birth_again,
}


def _buttons(kind: type[Callback], step: Step, ask: Step) -> list[Handler]:
    """A question answered with one of `kind`'s buttons; typed text re-asks it."""
    return [
        CallbackQueryHandler(step, pattern=kind.pattern()),
        MessageHandler(TYPED, ADDING.buttons_expected(ask)),
    ]


def addpatient_conversation(flows: Flows) -> Conversation:
    return ADDING.conversation(
        flows,
        entry_points=[
            CommandHandler("addpatient", start_adding),
            CallbackQueryHandler(start_adding, pattern=AddPatient.pattern()),
        ],
        states={
            NAME: [MessageHandler(TYPED, save_name)],
            RELATIONSHIP: _buttons(ChooseRelationship, save_relationship, ask_relationship),
            RELATIONSHIP_OTHER: [MessageHandler(TYPED, save_other)],
            LEVEL: _buttons(AskForLevel, save_level, ask_level),
            ROLE: _buttons(AskForRole, save_role, ask_role),
            OWN_LOGIN: _buttons(AnswerOwnLogin, save_own_login, ask_own_login),
            EMAIL: [MessageHandler(TYPED, save_email)],
            DOB: [MessageHandler(TYPED, save_dob)],
            CONFIRM: [
                CallbackQueryHandler(confirm, pattern=ConfirmAdding.pattern()),
                CallbackQueryHandler(ask_what_to_change, pattern=ChangeAnswers.pattern()),
                MessageHandler(TYPED, ADDING.buttons_expected(show_summary)),
            ],
            CHANGE: _buttons(ChangeAnswer, change_answer, ask_what_to_change),
        },
        back={state: _walking_back_to(step) for state, step in _BACK.items()},
    )
