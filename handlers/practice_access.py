"""/access for a practitioner (issue #20): who has access to a patient's portal, and
suspending one person's access. `/access Mia Lee` (a full name or an email) finds the
patient — patients of the same name are told apart by date of birth — and lists each
person with access, with a Suspend button each; Suspend asks first.

A practitioner who is also a signed-in patient gets their own /access with `/access`
alone, and this list with `/access` and a name. Every tap asks bot/safeguarding.py, which
checks on the server that the tapper is a practitioner now and that the grant is active
on that patient: the button names only what was tapped.
"""

from __future__ import annotations

import datetime as dt

from telegram import CallbackQuery, Update

from bot import access, labels, policy, safeguarding
from bot.callbacks import AskToSuspend, OpenPatientAccess, SuspendAccess
from bot.context import PortalContext
from bot.i18n import Translator
from bot.keyboards import Button, Keyboard
from bot.safeguarding import AccessLine, Outcome
from bot.text import esc
from handlers import manage
from handlers.guard import tapped
from handlers.language import practitioner_menu
from handlers.send import answer_quietly, edit_in_place, keyboard, send_to_chat
from storage.db import now
from storage.models import Patient

MAX_BUTTONS = 90  # Telegram refuses more than 100 per message

Screen = tuple[str, Keyboard | None]


def _button(label: str, data: str) -> Button:
    return Button(label, data=data)


async def show_access(update: Update, context: PortalContext) -> None:
    """/access: a practitioner with a name (or not signed in as a patient) looks a patient
    up; everyone else sees their own access, as before."""
    caller = context.caller
    typed = " ".join(context.args or [])
    if caller.is_practitioner and (typed or caller.patient is None):
        await practitioner_menu(context, caller)
        await _find_patient(update, context, typed)
        return
    await manage.show_access(update, context)


def _how_to_ask(_: Translator) -> str:
    return _("Send /access with the patient's full name or email, for example: /access Mia Lee")


async def _find_patient(update: Update, context: PortalContext, typed: str) -> None:
    _ = context._
    if not typed.strip():
        text = _("Whose access would you like to see?") + "\n" + _how_to_ask(_)
        await send_to_chat(update, text)
        return
    db, me = context.portal.db, context.caller.telegram_user_id
    found = await safeguarding.find_patients(db, me, typed)
    if found is None:
        await send_to_chat(update, _("Sorry, only practitioners of the practice can do this."))
        return
    if not found:
        text = _("I can't find a patient with that full name or email.") + "\n" + _how_to_ask(_)
        await send_to_chat(update, text)
        return
    if len(found) > 1:
        await send_to_chat(update, *_which_one(context, found))
        return
    listed = await safeguarding.access_for_practice(db, me, found[0].id)
    if listed is None:  # no longer a practitioner, a moment ago
        await send_to_chat(update, _("Sorry, only practitioners of the practice can do this."))
        return
    await send_to_chat(update, *_list_screen(context, *listed))


def _which_one(context: PortalContext, found: list[Patient]) -> Screen:
    """Patients of one name, told apart by date of birth (and email where they share it)."""
    _ = context._
    text = _("More than one patient is called {name}. Which one?").format(
        name=esc(found[0].full_name)
    )
    births = [p.date_of_birth for p in found]
    rows = []
    for p in found:
        label = (
            _("{name}, born {date}").format(name=p.full_name, date=_.date(p.date_of_birth))
            if p.date_of_birth
            else _("{name}, no date of birth on record").format(name=p.full_name)
        )
        if births.count(p.date_of_birth) > 1 and p.email:
            label += f" · {p.email}"
        rows.append([_button(label, OpenPatientAccess(p.id).encode())])
    return text, Keyboard(rows)


def _list_screen(context: PortalContext, subject: Patient, lines: list[AccessLine]) -> Screen:
    """Each person with access: name, what the patient is to them, level and role as the
    policy allows them now, until when; a Suspend button for access that stands."""
    _ = context._
    tz = context.portal.settings.tz
    text = [_("🔐 <b>Who has access to {name}'s portal</b>").format(name=esc(subject.full_name))]
    if subject.date_of_birth:
        text.append(_("Born: {date}").format(date=_.date(subject.date_of_birth)))
    text.append("")
    if not lines:
        text.append(_("Nobody has access to this portal."))
    rows: list[list[Button]] = []
    for line in lines:
        text += _person(_, subject, line, tz)
        if line.level is not None:
            label = _("Suspend {name}").format(name=line.entry.other_name)
            rows.append([_button(label, AskToSuspend(subject.id, line.entry.grant.id).encode())])
    if len(rows) > MAX_BUTTONS:
        rows = rows[:MAX_BUTTONS]
        text += ["", _("Not everyone above has a button: there are too many for one message.")]
    return "\n".join(text), keyboard(rows)


def _person(_: Translator, subject: Patient, line: AccessLine, tz: dt.tzinfo) -> list[str]:
    grant = line.entry.grant
    name = f"• <b>{esc(line.entry.other_name)}</b>"
    if line.level is None:
        return [name + " · " + _("ended by the practice's policy")]
    summary = labels.access_summary(_, line.level, grant.role)
    if subject.holder_id == grant.accessor_id and policy.holds(subject, policy.current(), now()):
        summary += " · " + _("holds the account")
    relationship = _("Relationship: {relationship} (what {name} is to them)").format(
        relationship=esc(labels.grant_relationship(_, grant)), name=esc(subject.full_name)
    )
    until = labels.until(_, grant, subject, tz) or _("no end date")
    return [f"{name} · {summary}", "   " + relationship, "   " + until]


async def _refused(query: CallbackQuery, context: PortalContext) -> None:
    """A tap the server refused: say why in the tapper's words."""
    _ = context._
    text = (
        _("You can't change this access.")
        if context.caller.is_practitioner
        else _("Sorry, only practitioners of the practice can do this.")
    )
    await answer_quietly(query, text, alert=True)


async def _show_list(
    query: CallbackQuery, context: PortalContext, patient_id: int, said: str = ""
) -> None:
    listed = await safeguarding.access_for_practice(
        context.portal.db, context.caller.telegram_user_id, patient_id
    )
    if listed is None:
        await _refused(query, context)
        return
    text, markup = _list_screen(context, *listed)
    await edit_in_place(query, (said + "\n\n" + text) if said else text, markup)


async def show_patient_access(update: Update, context: PortalContext) -> None:
    """A patient chosen among those of one name, or No under "Suspend …?": the list, in place."""
    query, data = tapped(update, OpenPatientAccess)
    listed = await safeguarding.access_for_practice(
        context.portal.db, context.caller.telegram_user_id, data.patient
    )
    if listed is None:
        await _refused(query, context)
        return
    await answer_quietly(query)
    await edit_in_place(query, *_list_screen(context, *listed))


async def ask_to_suspend(update: Update, context: PortalContext) -> None:
    """Suspend <name>: asks Yes or No first, saying what each side will hear."""
    query, data = tapped(update, AskToSuspend)
    _ = context._
    db, me = context.portal.db, context.caller.telegram_user_id
    found = await safeguarding.line_for_practice(db, me, data.patient, data.grant)
    if found is None:
        await _refused(query, context)
        return
    await answer_quietly(query)
    subject, line = found
    level = line.level or line.entry.grant.level
    text = _(
        "Suspend <b>{name}</b>'s access to <b>{subject}</b>'s portal ({access})? It ends at "
        "once. Both sides are told only that it ended, not who ended it or why."
    ).format(
        name=esc(line.entry.other_name),
        subject=esc(subject.full_name),
        access=labels.access_summary(_, level, line.entry.grant.role),
    )
    yes = _button(_("Yes, suspend"), SuspendAccess(data.patient, data.grant).encode())
    no = _button(_("No"), OpenPatientAccess(data.patient).encode())
    await edit_in_place(query, text, Keyboard([[yes, no]]))


async def suspend_access(update: Update, context: PortalContext) -> None:
    """Yes, suspend: the access ends at once, both sides hear only that, the access log
    says the practice did it; the list shows what is left."""
    query, data = tapped(update, SuspendAccess)
    _ = context._
    db, me = context.portal.db, context.caller.telegram_user_id
    result = await safeguarding.suspend_by_practitioner(db, data.grant, me, data.patient)
    if result.outcome is Outcome.NOT_YOURS:
        await _refused(query, context)
        return
    if result.outcome is Outcome.ALREADY:
        await answer_quietly(query, _("This has already changed; here is the current picture."))
        await _show_list(query, context, data.patient)
        return
    await answer_quietly(query, _("Done."))
    said = ""
    if (parties := await access.grant_parties(db, data.grant)) is not None:
        _grant, accessor, subject = parties
        said = _(
            "Suspended: {name}'s access to {subject}'s portal. Those concerned are told only "
            "that it ended, not who ended it."
        ).format(name=esc(accessor.full_name), subject=esc(subject.full_name))
    await _show_list(query, context, data.patient, said)
