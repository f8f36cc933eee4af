"""Reminders and new-item notices: their words, made when each is sent (the outbox's
renderers, in handlers/notices.py's table), and the buttons on them.

Everything is checked again when a message goes, not only when it was queued: access
revoked since, an appointment cancelled or moved, a patient who has died, a kind muted in
/notifications, quiet hours. They name whose appointment or portal and what kind of thing,
never a practitioner, a reason or a result (they show on lock screens).

Confirm and Cancel on a reminder do what the appointments view does
(bot/access.py act_on_appointment, checked there again); only the patient and holders with
the Edit role get them.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from telegram import Update

from bot import access
from bot.access import ActOutcome, AppointmentInReach, Area
from bot.callbacks import (
    CancelFromReminder,
    ConfirmCancelFromReminder,
    ConfirmFromReminder,
    KeepFromReminder,
    OpenNewItem,
)
from bot.context import Portal, PortalContext
from bot.i18n import Translator, translator
from bot.keyboards import Button, Keyboard
from bot.outbox import Drop, Later, Outgoing, Rendered
from bot.quiet import SHORT_REMINDER_S, quiet_until
from bot.text import esc
from handlers.guard import tapped, tell_to_sign_in
from handlers.send import edit_in_place
from handlers.views import show_invoices, show_records
from storage import appointment_changes, logins, notifications, patients, portal, reminders
from storage.db import Reads, now
from storage.notifications import Item, Topic
from storage.outbox import Message
from storage.vocabulary import Action, AppointmentAct, AppointmentStatus

_AREA = {Item.INVOICE: Area.INVOICES, Item.RECORD: Area.RECORDS}


# --- Words -------------------------------------------------------------------------------


def reminder_view(
    _: Translator, found: AppointmentInReach, tz: dt.tzinfo
) -> tuple[str, Keyboard | None]:
    """A reminder as it stands: whose appointment and when, its state, and Confirm /
    Cancel for someone who may act on it."""
    a = found.appointment
    when = _.when(a.starts_at, tz)
    if found.own:
        text = _("⏰ Reminder: you have an appointment on {when}.").format(when=when)
    else:
        text = _("⏰ Reminder: <b>{name}</b> has an appointment on {when}.").format(
            name=esc(found.subject.full_name), when=when
        )
    if a.status is AppointmentStatus.CONFIRMED:
        text += "\n✅ " + _("Attendance confirmed.")
    elif a.status is AppointmentStatus.CANCELLED:
        text += "\n❌ " + _("Appointment cancelled.")
    buttons = []
    if found.can_edit and a.status is AppointmentStatus.BOOKED:
        buttons.append(Button(_("✅ Confirm"), data=ConfirmFromReminder(a.id).encode()))
    if found.can_edit and a.status in (AppointmentStatus.BOOKED, AppointmentStatus.CONFIRMED):
        buttons.append(Button(_("❌ Cancel appointment"), data=CancelFromReminder(a.id).encode()))
    return text, Keyboard([buttons]) if buttons else None


def _moved_text(_: Translator, found: AppointmentInReach, tz: dt.tzinfo) -> str:
    when = _.when(found.appointment.starts_at, tz)
    if found.own:
        return _("📅 Your appointment has moved to {when}.").format(when=when)
    return _("📅 <b>{name}</b>'s appointment has moved to {when}.").format(
        name=esc(found.subject.full_name), when=when
    )


def _new_item_text(_: Translator, kind: str, name: str | None) -> str:
    """What is new and whose, never what it says. `name` None: the reader's own portal."""
    if kind == "invoice":
        if name is None:
            return _("🧾 You have a new invoice.")
        return _("🧾 There is a new invoice for <b>{name}</b>.").format(name=esc(name))
    if kind == "result":
        if name is None:
            return _("📋 A new result is ready in your portal.")
        return _("📋 A new result for <b>{name}</b> is ready.").format(name=esc(name))
    if name is None:
        return _("📋 A new clinical record is ready in your portal.")
    return _("📋 A new clinical record for <b>{name}</b> is ready.").format(name=esc(name))


def _practice_text(_: Translator, status: str, name: str, when: str) -> str:
    """The practitioner: which appointment changed, not who in the portal changed it."""
    if status == AppointmentStatus.CANCELLED:
        return _(
            "<b>{name}</b>'s appointment on {when} was cancelled in the patient portal."
        ).format(name=esc(name), when=when)
    return _(
        "Attendance at <b>{name}</b>'s appointment on {when} was confirmed in the patient portal."
    ).format(name=esc(name), when=when)


# --- Renderers (the outbox's, handlers/notices.py) ------------------------------------------


async def _recipient(
    conn: Reads, p: Portal, recipient_id: int | None, subject_id: int, area: Area, topic: Topic
) -> tuple[int, Translator] | Drop | None:
    """The recipient's chat and language, while they may still be told this (None: they
    may not; Drop: not reachable, or they muted it)."""
    if recipient_id is None:
        return None
    login = await logins.for_patient(conn, recipient_id)
    if login is None:
        return Drop("no_login")
    if not await access.may_be_told(conn, recipient_id, subject_id, area):
        return None
    if await notifications.muted(conn, login.telegram_user_id, subject_id, topic):
        return Drop("muted")
    return login.telegram_user_id, translator(login.locale, p.settings.default_locale)


async def _in_reach(
    conn: Reads, recipient_id: int, appointment_id: int
) -> AppointmentInReach | None:
    appointment = await portal.get_appointment(conn, appointment_id)
    subject = await patients.get(conn, appointment.patient_id) if appointment else None
    if appointment is None or subject is None:
        return None
    edit = await access.permission(
        conn, recipient_id, subject.id, Area.APPOINTMENTS, access.Act.EDIT
    )
    return AppointmentInReach(appointment, subject, subject.id == recipient_id, edit.allowed)


def _stale(found: AppointmentInReach, starts_at: object) -> Drop | None:
    """Why an appointment's reminder or notice would say something no longer true."""
    a = found.appointment
    if a.status is AppointmentStatus.CANCELLED:
        return Drop("cancelled")
    if a.starts_at != starts_at:
        return Drop("moved")  # the practice moved it: a notice of its own says so
    if a.starts_at <= now():
        return Drop("late")
    return None


@dataclass(frozen=True)
class _Reminded:
    """Who hears of an appointment, and when their quiet hours end (None: not quiet now)."""

    found: AppointmentInReach
    chat_id: int
    words: Translator
    quiet_until: int | None


async def _reminded(p: Portal, row: Message) -> _Reminded | Rendered:
    """The row's appointment, while it is still as the row knew it (not cancelled, moved
    or past: a move has a notice of its own), and its recipient while they may still hear
    of it; otherwise what becomes of the row."""
    async with p.db.read() as conn:
        found = await _in_reach(conn, row.patient_id or 0, row.ref_id or 0)
        if found is None:
            return None
        stale = _stale(found, row.detail.get("starts_at"))
        if stale is not None:
            return stale
        to = await _recipient(
            conn, p, row.patient_id, found.subject.id, Area.APPOINTMENTS, Topic.REMINDERS
        )
        if not isinstance(to, tuple):
            return to
        chat_id, _ = to
        end = await quiet_until(conn, chat_id, now(), p.settings.tz)
    return _Reminded(found, chat_id, _, end)


async def reminder(p: Portal, row: Message) -> Rendered:
    """An appointment is coming: the patient and whoever may see their appointments, with
    Confirm / Cancel for those who may act."""
    to = await _reminded(p, row)
    if not isinstance(to, _Reminded):
        return to
    end = to.quiet_until
    if end is not None:
        short = int(row.detail.get("offset", 0)) < SHORT_REMINDER_S
        return Drop("quiet") if short or end >= to.found.appointment.starts_at else Later(end)
    text, markup = reminder_view(to.words, to.found, p.settings.tz)
    return Outgoing(to.chat_id, text, markup)


async def appointment_moved(p: Portal, row: Message) -> Rendered:
    """The practice moved an appointment someone was reminded of: where it went."""
    to = await _reminded(p, row)
    if not isinstance(to, _Reminded):
        return to
    end = to.quiet_until
    if end is not None:
        return Drop("quiet") if end >= to.found.appointment.starts_at else Later(end)
    return Outgoing(to.chat_id, _moved_text(to.words, to.found, p.settings.tz))


async def new_item(p: Portal, row: Message) -> Rendered:
    """A new invoice (everyone with access) or clinical record (Clinical access only)."""
    subject_id, item = row.detail.get("subject"), row.detail.get("item")
    if not isinstance(subject_id, int) or item not in set(Item):
        return None
    item = Item(item)
    async with p.db.read() as conn:
        kind = await reminders.item_exists(conn, item.table, row.ref_id or 0, subject_id)
        subject = await patients.get(conn, subject_id)
        if kind is None or subject is None:
            return None  # withdrawn at the source since
        to = await _recipient(conn, p, row.patient_id, subject_id, _AREA[item], item.topic)
        if not isinstance(to, tuple):
            return to
        chat_id, _ = to
        end = await quiet_until(conn, chat_id, now(), p.settings.tz)
    if end is not None:
        return Later(end)
    name = None if subject_id == row.patient_id else subject.full_name
    label = _("🧾 Invoices") if item is Item.INVOICE else _("📋 Records")
    button = Button(label, data=OpenNewItem(subject_id, item).encode())
    return Outgoing(chat_id, _new_item_text(_, kind, name), Keyboard([[button]]))


async def appointment_changed(p: Portal, row: Message) -> Rendered:
    """A practitioner: an appointment with them was confirmed or cancelled in the bot."""
    if row.chat_id is None:
        return None
    async with p.db.read() as conn:
        change = await appointment_changes.get(conn, row.ref_id or 0)
        appointment = await portal.get_appointment(conn, change.appointment_id) if change else None
        patient = await patients.get(conn, appointment.patient_id) if appointment else None
        login = await logins.get(conn, row.chat_id)
    if change is None or appointment is None or patient is None:
        return None
    _ = translator(login.locale if login else None, p.settings.default_locale)
    when = _.when(appointment.starts_at, p.settings.tz)
    return Outgoing(row.chat_id, _practice_text(_, change.status, patient.full_name, when))


# --- Buttons on a reminder -----------------------------------------------------------------


async def _reached(
    update: Update, context: PortalContext, appointment_id: int, action: Action
) -> AppointmentInReach | None:
    """The appointment behind a tapped reminder button, while the caller may see it; they
    are told otherwise."""
    query = update.callback_query
    assert query is not None
    who = context.caller
    if who.patient is None:
        await tell_to_sign_in(update, who._)
        return None
    found = await access.appointment_in_reach(
        context.portal.db, who.patient.id, appointment_id, action=action
    )
    if found is None:
        await query.answer(who._("You no longer have access to this portal."), show_alert=True)
    return found


async def _act(
    update: Update, context: PortalContext, appointment_id: int, verb: AppointmentAct
) -> None:
    """Confirm or cancel, as the appointments view does, then show the reminder as it is."""
    query = update.callback_query
    assert query is not None
    _ = context.caller._
    event = (
        Action.APPOINTMENT_CONFIRMED
        if verb is AppointmentAct.CONFIRM
        else Action.APPOINTMENT_CANCELLED
    )
    found = await _reached(update, context, appointment_id, event)
    if found is None:
        return
    db = context.portal.db
    me = context.caller.patient
    assert me is not None
    outcome = await access.act_on_appointment(db, me.id, found.subject.id, appointment_id, verb)
    if outcome is ActOutcome.REFUSED:
        await query.answer(_("You can't change this appointment."), show_alert=True)
        return
    if outcome is ActOutcome.ALREADY:
        await query.answer(_("This appointment has already been changed."), show_alert=True)
    else:
        await query.answer(
            _("Appointment cancelled.")
            if verb is AppointmentAct.CANCEL
            else _("Attendance confirmed.")
        )
    now_found = await access.appointment_in_reach(
        db, me.id, appointment_id, action=Action.VIEW_APPOINTMENTS
    )
    if now_found is not None:
        await edit_in_place(query, *reminder_view(_, now_found, context.portal.settings.tz))


async def confirm_from_reminder(update: Update, context: PortalContext) -> None:
    """✅ Confirm on a reminder: attendance confirmed (the patient, or Edit access)."""
    _query, tap = tapped(update, ConfirmFromReminder)
    await _act(update, context, tap.appointment_id, AppointmentAct.CONFIRM)


async def ask_to_cancel_from_reminder(update: Update, context: PortalContext) -> None:
    """❌ Cancel on a reminder: asks once more, in place."""
    query, tap = tapped(update, CancelFromReminder)
    _ = context.caller._
    found = await _reached(update, context, tap.appointment_id, Action.APPOINTMENT_CANCEL_ASKED)
    if found is None:
        return
    if not found.can_edit or found.appointment.status is AppointmentStatus.CANCELLED:
        await query.answer(_("You can't change this appointment."), show_alert=True)
        return
    await query.answer()
    text, _markup = reminder_view(_, found, context.portal.settings.tz)
    appointment_id = found.appointment.id
    markup = Keyboard(
        [
            [
                Button(
                    _("Yes, cancel it"),
                    data=ConfirmCancelFromReminder(appointment_id).encode(),
                ),
                Button(_("No, keep it"), data=KeepFromReminder(appointment_id).encode()),
            ]
        ]
    )
    await edit_in_place(query, text + "\n\n" + _("Cancel this appointment?"), markup)


async def cancel_from_reminder(update: Update, context: PortalContext) -> None:
    """Yes, cancel it: the appointment is cancelled (the patient, or Edit access)."""
    _query, tap = tapped(update, ConfirmCancelFromReminder)
    await _act(update, context, tap.appointment_id, AppointmentAct.CANCEL)


async def keep_from_reminder(update: Update, context: PortalContext) -> None:
    """No, keep it: the reminder as it was."""
    query, tap = tapped(update, KeepFromReminder)
    found = await _reached(update, context, tap.appointment_id, Action.VIEW_APPOINTMENTS)
    if found is None:
        return
    await query.answer()
    await edit_in_place(query, *reminder_view(context.caller._, found, context.portal.settings.tz))


async def open_new_item(update: Update, context: PortalContext) -> None:
    """🧾 Invoices / 📋 Records on a notice: that patient's portal, that view, if the caller
    may still see it (switching to it, as /switch would)."""
    query, tap = tapped(update, OpenNewItem)
    who = context.caller
    if who.patient is None:
        await tell_to_sign_in(update, who._)
        return
    view = await access.switch_to(context.portal.db, who.telegram_user_id, tap.subject_id)
    if view is None:
        await query.answer(who._("You don't have access to that portal."), show_alert=True)
        return
    # The view answers the tap and checks the area (an Administrative holder is told
    # records are not shared).
    await (show_invoices if tap.item is Item.INVOICE else show_records)(update, context)
