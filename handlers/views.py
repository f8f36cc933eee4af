"""/switch and the portal views: appointments, invoices, clinical records, details.

Every view says whose portal it shows, and every view, page and action is checked by
bot.access at the moment of the request. Callback data names a subject and an item; it
never decides anything by itself.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import unicodedata
from collections.abc import Awaitable, Callable
from typing import assert_never

from telegram import CallbackQuery, Update
from telegram.ext import ApplicationHandlerStop, filters

from bot import access, labels, measures, policy, records
from bot.access import SEEN_AS, ActOutcome, Area, Refusal, Viewing
from bot.callbacks import (
    AskToCancel,
    CancelAppointment,
    ConfirmAppointment,
    KeepAppointment,
    OpenArea,
    OpenSwitch,
    SwitchTo,
    TurnFoundPage,
    TurnPage,
    TurnSwitchPage,
)
from bot.context import PortalContext
from bot.i18n import Translator
from bot.keyboards import Button, Keyboard
from bot.text import esc
from bot.userstate import store_after_update
from handlers.guard import patient_tap, require_viewing, tapped
from handlers.paging import Paged, page_row
from handlers.send import answer_quietly, edit_in_place, send_to_chat
from storage import clock
from storage.models import AccessEntry, Appointment
from storage.vocabulary import Action, AppointmentAct, AppointmentStatus, GrantStatus

Screen = tuple[str, Keyboard]
Row = list[Button]


# --- Words --------------------------------------------------------------------------------


def header(_: Translator, view: Viewing) -> str:
    """The first line of every view: whose records these are, and until when (#20)."""
    if view.grant is None:
        return _("👤 Viewing: your own portal")
    line = _("👥 Viewing: {patient}").format(
        patient=labels.patient_line(_, view.subject.full_name, view.grant)
    )
    until = labels.until(_, view.grant, view.subject, policy.current().tz)
    return line + " · " + until if until else line


def lost_notice(_: Translator, view: Viewing) -> str | None:
    if view.lost is None:
        return None
    name = esc(view.lost_subject.full_name if view.lost_subject else "")
    if view.lost is GrantStatus.EXPIRED:
        return _(
            "Your access to {name}'s portal has expired, so you're back in your own portal."
        ).format(name=name)
    return _("Your access to {name}'s portal has ended, so you're back in your own portal.").format(
        name=name
    )


def _status(_: Translator, status: AppointmentStatus) -> str:
    match status:  # one case per value: a table translated all three for each line
        case AppointmentStatus.BOOKED:
            return _.pgettext("appointment status", "Booked")
        case AppointmentStatus.CONFIRMED:
            return _.pgettext("appointment status", "Confirmed")
        case AppointmentStatus.CANCELLED:
            return _.pgettext("appointment status", "Cancelled")
        case unknown:
            assert_never(unknown)


_STATUS_MARKS = {AppointmentStatus.CANCELLED: "❌ ", AppointmentStatus.CONFIRMED: "✅ "}


def _record_kind(_: Translator, kind: str) -> str:
    return {
        "condition": _.pgettext("record kind", "Condition"),
        "immunisation": _.pgettext("record kind", "Immunisation"),
        "result": _.pgettext("record kind", "Result"),
        "allergy": _.pgettext("record kind", "Allergy"),
        "note": _.pgettext("record kind", "Note"),
    }.get(kind, kind)


def _appointment_line(_: Translator, a: Appointment, tz: dt.tzinfo) -> str:
    where = " · ".join(esc(x) for x in (a.practitioner, a.location) if x)
    mark = _STATUS_MARKS.get(a.status, "")
    return f"📅 <b>{_.when(a.starts_at, tz)}</b>\n{where}\n{mark}{_status(_, a.status)}"


def details_text(_: Translator, view: Viewing) -> str:
    p = view.subject
    lines = [
        header(_, view),
        "",
        _("<b>Details</b>"),
        "",
        _("Name: {name}").format(name=esc(p.full_name)),
    ]
    if p.date_of_birth:
        lines.append(_("Date of birth: {date}").format(date=_.date(p.date_of_birth)))
    if p.email:
        lines.append(_("Email: {email}").format(email=esc(p.email)))
    return "\n".join(lines)


def refusal(_: Translator, view: Viewing, area: Area, *, html: bool = True) -> str:
    """Why this part is not shown; html=False for a pop-up alert, which is plain text."""
    name = esc(view.subject.full_name) if html else view.subject.full_name
    if area is Area.RECORDS:
        return _(
            "{name}'s clinical records are not shared with you: your access is Administrative "
            "(appointments and invoices only)."
        ).format(name=name)
    return _("You don't have access to this part of {name}'s portal.").format(name=name)


def refused_screen(_: Translator, view: Viewing, area: Area) -> Screen:
    """In place of a view the access does not include: why, and the views it does."""
    text = header(_, view) + "\n\n" + refusal(_, view, area)
    return text, Keyboard(_other_views(_, view, area))


# --- One renderer per view -------------------------------------------------------------------
# Each reads through bot.access (which checks and records the look) and returns the page's
# text and buttons, or the refusal.


def _nav(_: Translator, at: TurnPage, page: Paged) -> Row:
    return page_row(_, page, lambda n: dataclasses.replace(at, page=n).encode())


def _other_views(_: Translator, view: Viewing, shown: Area) -> list[Row]:
    """The same patient's other views, opened in place, and Switch: moving around a portal
    never needs a command. Only the views this access includes."""
    names = {
        Area.APPOINTMENTS: _("📅 Appointments"),
        Area.INVOICES: _("🧾 Invoices"),
        Area.RECORDS: _("📋 Records"),
        Area.DETAILS: _("👤 Details"),
    }
    buttons = [
        Button(label, data=TurnPage(area, view.subject.id, 0).encode())
        for area, label in names.items()
        if area is not shown and access.shows(view, area)
    ]
    buttons.append(Button(_("🔄 Switch patient"), data=OpenSwitch().encode()))
    return [row for row in (buttons[:2], buttons[2:]) if row]


def _appointment_actions(_: Translator, a: Appointment, at: TurnPage, tz: dt.tzinfo) -> Row:
    """Cancel (and Confirm, while only booked) under an upcoming appointment."""
    day = _.short_day(a.starts_at, tz)
    ask = AskToCancel(at.subject, a.id, at.page).encode()
    row = [Button(_("Cancel {day}").format(day=day), data=ask)]
    if a.status is AppointmentStatus.BOOKED:
        confirm = ConfirmAppointment(at.subject, a.id, at.page).encode()
        row.append(Button(_("Confirm {day}").format(day=day), data=confirm))
    return row


async def appointments_screen(
    context: PortalContext, view: Viewing, at: TurnPage, *, recorded: bool = True
) -> Screen | Refusal:
    """Upcoming (with Cancel and Confirm, for who may act) or past appointments."""
    _ = context._
    tz = context.portal.settings.tz
    read = await access.read_appointments(
        context.portal.db, view, past=at.past, page=at.page, recorded=recorded
    )
    if isinstance(read, Refusal):
        return read
    lines = [header(_, view), ""]
    lines.append(_("<b>Past appointments</b>") if at.past else _("<b>Upcoming appointments</b>"))
    rows: list[Row] = []
    for a in read.page.items:
        lines += ["", _appointment_line(_, a, tz)]
        if not at.past and read.editable and a.status is not AppointmentStatus.CANCELLED:
            rows.append(_appointment_actions(_, a, at, tz))
    if not read.page.items:
        lines += ["", _("No past appointments.") if at.past else _("No upcoming appointments.")]
    other = dataclasses.replace(at, page=0, past=not at.past)
    toggle = _("Upcoming") if at.past else _("Past appointments")
    rows += [_nav(_, at, read.page), [Button(toggle, data=other.encode())]]
    rows += _other_views(_, view, Area.APPOINTMENTS)
    return "\n".join(lines), Keyboard([r for r in rows if r])


async def invoices_screen(context: PortalContext, view: Viewing, at: TurnPage) -> Screen | Refusal:
    """Invoices, newest first: paid or not."""
    _ = context._
    read = await access.read_invoices(context.portal.db, view, page=at.page)
    if isinstance(read, Refusal):
        return read
    lines = [header(_, view), "", _("<b>Invoices</b>")]
    for i in read.items:
        state = _.pgettext("invoice", "Paid") if i.paid else _.pgettext("invoice", "Unpaid")
        lines += [
            "",
            f"🧾 <b>{esc(i.number)}</b> · {_.date(i.issued_on)}\n"
            f"{_.money(i.amount_minor, i.currency)} · {state}",
        ]
    if not read.items:
        lines += ["", _("No invoices.")]
    rows = [_nav(_, at, read), *_other_views(_, view, Area.INVOICES)]
    return "\n".join(lines), Keyboard([r for r in rows if r])


async def records_screen(context: PortalContext, view: Viewing, at: TurnPage) -> Screen | Refusal:
    """Clinical records: for one's own portal and Clinical access only."""
    _ = context._
    read = await access.read_records(context.portal.db, view, page=at.page)
    if isinstance(read, Refusal):
        return read
    lines = [header(_, view), "", _("<b>Clinical records</b>")]
    for r in read.items:
        measured = measures.render(r.measurement, _.format_locale)
        shown = ", ".join(x for x in (measured, r.details) if x)
        detail = f"\n{esc(shown)}" if shown else ""
        day = _.date(r.recorded_on) if r.recorded_on else _("date not recorded")
        lines += ["", f"📋 <b>{esc(r.title)}</b>\n{_record_kind(_, r.kind)} · {day}{detail}"]
    if not read.items:
        lines += ["", _("No clinical records.")]
    rows = [_nav(_, at, read), *_other_views(_, view, Area.RECORDS)]
    return "\n".join(lines), Keyboard([r for r in rows if r])


async def details_screen(context: PortalContext, view: Viewing, at: TurnPage) -> Screen | Refusal:
    """Name, date of birth and email."""
    _ = context._
    read = await access.read_details(context.portal.db, view)
    if isinstance(read, Refusal):
        return read
    rows = _other_views(_, view, Area.DETAILS)
    return details_text(_, view), Keyboard(rows)


SCREENS: dict[Area, Callable[[PortalContext, Viewing, TurnPage], Awaitable[Screen | Refusal]]] = {
    Area.APPOINTMENTS: appointments_screen,
    Area.INVOICES: invoices_screen,
    Area.RECORDS: records_screen,
    Area.DETAILS: details_screen,
}


# --- Opening a view ---------------------------------------------------------------------------


async def _current(update: Update, context: PortalContext) -> Viewing | None:
    """The portal being viewed, with the tap answered (once, whatever is sent next) and a
    notice first when access to the one chosen before has ended."""
    view = await require_viewing(update, context)
    if view is None:
        return None
    if update.callback_query:
        await answer_quietly(update.callback_query)
    notice = lost_notice(context._, view)
    if notice:
        await send_to_chat(update, notice)
    return view


async def _show(update: Update, context: PortalContext, area: Area) -> None:
    """A view of the portal being viewed, as a new message."""
    view = await _current(update, context)
    if view is None:
        return
    _ = context._
    shown = await SCREENS[area](context, view, TurnPage(area, view.subject.id, 0))
    if isinstance(shown, Refusal):
        await send_to_chat(update, header(_, view) + "\n\n" + refusal(_, view, area))
        return
    await send_to_chat(update, *shown)


async def show_appointments(update: Update, context: PortalContext) -> None:
    """/appointments: upcoming appointments of the patient being viewed."""
    await _show(update, context, Area.APPOINTMENTS)


async def show_invoices(update: Update, context: PortalContext) -> None:
    """/invoices: invoices of the patient being viewed."""
    await _show(update, context, Area.INVOICES)


async def show_records(update: Update, context: PortalContext) -> None:
    """/records: clinical records, for Clinical access only."""
    await _show(update, context, Area.RECORDS)


async def show_details(update: Update, context: PortalContext) -> None:
    """/details: name, date of birth and email of the patient being viewed."""
    await _show(update, context, Area.DETAILS)


async def open_area(update: Update, context: PortalContext) -> None:
    """📅 Appointments, 🧾 Invoices, 📋 Records or 👤 Details on the home menu."""
    _query, data = tapped(update, OpenArea)
    await _show(update, context, data.area)


async def turn_page(update: Update, context: PortalContext) -> None:
    """◀ ▶, Past/Upcoming and the other views under a view: re-checks access, edits the
    page in place."""
    tap = await patient_tap(update, context, TurnPage)
    if tap is None:
        return
    query, at, _ = tap.query, tap.data, context._
    who = context.caller
    view = await access.view_of(
        context.portal.db,
        who.telegram_user_id,
        at.subject,
        action=SEEN_AS[at.area],
        signed_in=who.sign_in,
    )
    if view is None:
        await query.answer(_("You no longer have access to this portal."), show_alert=True)
        return
    shown = await SCREENS[at.area](context, view, at)
    if isinstance(shown, Refusal):
        await query.answer(refusal(_, view, at.area, html=False)[:200], show_alert=True)
        return
    await answer_quietly(query)
    await edit_in_place(query, *shown)


# --- Appointment actions -------------------------------------------------------------------


AppointmentTap = AskToCancel | CancelAppointment | KeepAppointment | ConfirmAppointment


async def _appointment_view(
    query: CallbackQuery, context: PortalContext, data: AppointmentTap, seen_as: Action
) -> Viewing | None:
    """The portal the button was made for, while this login still has it; otherwise None,
    once the tapper is told (bot.access records the refusal as `seen_as`)."""
    who = context.caller
    view = await access.view_of(
        context.portal.db, who.telegram_user_id, data.subject, action=seen_as, signed_in=who.sign_in
    )
    if view is None:
        await query.answer(context._("You no longer have access to this portal."), show_alert=True)
    return view


async def _show_appointments_again(
    query: CallbackQuery, context: PortalContext, view: Viewing, page: int
) -> None:
    """The upcoming appointments page the button was on, after acting (recorded as the act)."""
    at = TurnPage(Area.APPOINTMENTS, view.subject.id, page)
    shown = await appointments_screen(context, view, at, recorded=False)
    if isinstance(shown, Refusal):
        shown = refused_screen(context._, view, Area.APPOINTMENTS)
    await edit_in_place(query, *shown)


def _cancel_question(
    context: PortalContext, view: Viewing, appointment: Appointment, data: AskToCancel
) -> Screen:
    _ = context._
    line = _appointment_line(_, appointment, context.portal.settings.tz)
    text = "\n".join([header(_, view), "", _("Cancel this appointment?"), "", line])
    ids = (data.subject, data.appointment, data.page)
    yes, no = CancelAppointment(*ids).encode(), KeepAppointment(*ids).encode()
    buttons = [
        Button(_("Yes, cancel it"), data=yes),
        Button(_("No, keep it"), data=no),
    ]
    return text, Keyboard([buttons])


async def ask_to_cancel(update: Update, context: PortalContext) -> None:
    """Cancel <day>: asks Yes or No, for one who may act on this patient's appointment."""
    tap = await patient_tap(update, context, AskToCancel)
    if tap is None:
        return
    query, data = tap.query, tap.data
    view = await _appointment_view(query, context, data, Action.APPOINTMENT_CANCEL_ASKED)
    if view is None:
        return
    found = await access.appointment_to_cancel(context.portal.db, view, data.appointment)
    if isinstance(found, Refusal):
        await query.answer(context._("You can't change this appointment."), show_alert=True)
        return
    await answer_quietly(query)
    await edit_in_place(query, *_cancel_question(context, view, found, data))


async def keep_appointment(update: Update, context: PortalContext) -> None:
    """No, keep it: the appointments page again, nothing changed."""
    tap = await patient_tap(update, context, KeepAppointment)
    if tap is None:
        return
    query, data = tap.query, tap.data
    view = await _appointment_view(query, context, data, Action.VIEW_APPOINTMENTS)
    if view is None:
        return
    await answer_quietly(query)
    await _show_appointments_again(query, context, view, data.page)


async def cancel_appointment(update: Update, context: PortalContext) -> None:
    """Yes, cancel it: bot.access checks the role and whose appointment it is."""
    tap = await patient_tap(update, context, CancelAppointment)
    if tap is not None:
        await _act(tap.query, context, tap.data, context._("Appointment cancelled."))


async def confirm_appointment(update: Update, context: PortalContext) -> None:
    """Confirm <day>: bot.access checks the role and whose appointment it is."""
    tap = await patient_tap(update, context, ConfirmAppointment)
    if tap is not None:
        await _act(tap.query, context, tap.data, context._("Attendance confirmed."))


# What bot.access is asked to do for each act, and what it is recorded as.
_ACTS = {
    CancelAppointment: (AppointmentAct.CANCEL, Action.APPOINTMENT_CANCELLED),
    ConfirmAppointment: (AppointmentAct.CONFIRM, Action.APPOINTMENT_CONFIRMED),
}


async def _act(
    query: CallbackQuery,
    context: PortalContext,
    data: CancelAppointment | ConfirmAppointment,
    done: str,
) -> None:
    """Cancel or confirm through bot.access, answer, and show the page as it is now."""
    _ = context._
    act, recorded_as = _ACTS[type(data)]
    view = await _appointment_view(query, context, data, recorded_as)
    if view is None:
        return
    outcome = await access.act_on_appointment(
        context.portal.db, view.me.id, view.subject.id, data.appointment, act
    )
    if outcome is ActOutcome.REFUSED:
        await query.answer(_("You can't change this appointment."), show_alert=True)
        return
    if outcome is ActOutcome.ALREADY:
        await answer_quietly(query, _("This appointment has already been changed."), alert=True)
    else:
        await answer_quietly(query, done)
    await _show_appointments_again(query, context, view, data.page)


# --- /switch ---------------------------------------------------------------------------------


SWITCH_PAGE_SIZE = 10  # people per /switch page; a carer may access hundreds
SEARCH_KEY = "switch_search"  # in user_data: when /switch last asked to type a name
SEARCH_MAX = 50  # characters of a name to look for


def _folded(text: str) -> str:
    """For finding names: case and accents do not count ("zoe" finds Zoë)."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def _switch_page_data(part: str) -> Callable[[int], str]:
    """Callback data for page n of everyone, or of those found with `part` of a name."""
    if part:
        return lambda n: TurnFoundPage.of(n, part).encode()
    return lambda n: TurnSwitchPage(n).encode()


def _switch_keyboard(
    _: Translator, view: Viewing, page: records.Page[AccessEntry], nav: list[Button]
) -> Keyboard:
    rows = []
    mark = "● "
    me_label = (mark if view.grant is None else "") + _("Me ({name})").format(
        name=view.me.full_name
    )
    rows.append([Button(me_label[:64], data=SwitchTo(view.me.id).encode())])
    for e in page.items:
        grant = e.grant
        assert grant.subject_id is not None  # an active grant is on a patient
        relationship = labels.grant_relationship(_, grant)
        label = f"{e.other_name} ({relationship}) · {labels.level(_, grant.level)}"
        current = view.grant is not None and view.subject.id == grant.subject_id
        label = (mark if current else "") + label
        switch = SwitchTo(grant.subject_id).encode()
        rows.append([Button(label, data=switch)])
    if nav:
        rows.append(nav)
    return Keyboard(rows)


async def _switch_list(
    context: PortalContext, view: Viewing, part: str, number: int
) -> tuple[str, Keyboard, bool]:
    """Page `number` of the people this patient accesses (only those whose name has
    `part`, when given), and whether it asks to type part of a name: when everyone
    takes more than one page."""
    _ = context._
    entries = await access.accessible(context.portal.db, view.me.id)
    found = [e for e in entries if _folded(part) in _folded(e.other_name)] if part else entries
    page = records.page_of(found, number, SWITCH_PAGE_SIZE)
    lines = [header(_, view), "", _("Whose portal would you like to see?")]
    if not entries:
        lines += [
            "",
            _("You don't access anyone else's portal yet. Send /addpatient to add someone."),
        ]
    elif part and not found:
        lines += [
            "",
            _(
                "Nobody you access has “{part}” in their name. Type another part of it, "
                "or send /switch to see everyone."
            ).format(part=esc(part)),
        ]
    elif part:
        lines += ["", _("People you access with “{part}” in their name:").format(part=esc(part))]
    many = len(entries) > SWITCH_PAGE_SIZE
    if many:
        lines += ["", _("Type part of a name to find someone.")]
    nav = page_row(_, page, _switch_page_data(part))
    return "\n".join(lines), _switch_keyboard(_, view, page, nav), many


def _ask_for_a_name(context: PortalContext, asked: bool) -> None:
    """Whether text typed next is a name to find (see find_typed_name)."""
    if context.user_data is None:
        return
    if asked:
        context.user_data[SEARCH_KEY] = clock.time()
    else:
        context.user_data.pop(SEARCH_KEY, None)


async def show_switch(update: Update, context: PortalContext) -> None:
    """/switch (or /switch and part of a name): whose portal to show — you, or anyone you
    have access to, a page at a time."""
    part = " ".join(context.args or [])
    await _show_switch(update, context, part)


async def open_switch(update: Update, context: PortalContext) -> None:
    """🔄 Switch patient, on the home menu or under a view: everyone, as /switch."""
    await _show_switch(update, context, "")


async def _show_switch(update: Update, context: PortalContext, typed: str) -> None:
    view = await _current(update, context)
    if view is None:
        return
    part = " ".join(typed.split())[:SEARCH_MAX]
    text, markup, asks = await _switch_list(context, view, part, 0)
    await send_to_chat(update, text, markup)
    _ask_for_a_name(context, asks)


async def turn_switch_page(update: Update, context: PortalContext) -> None:
    """◀ ▶ in a /switch list of everyone: that page, in place."""
    query, data = tapped(update, TurnSwitchPage)
    await _turn_switch_page(query, update, context, "", data.page)


async def turn_found_page(update: Update, context: PortalContext) -> None:
    """◀ ▶ in a /switch list of those found with part of a name: that page, in place."""
    query, data = tapped(update, TurnFoundPage)
    await _turn_switch_page(query, update, context, data.part, data.page)


async def _turn_switch_page(
    query: CallbackQuery, update: Update, context: PortalContext, part: str, number: int
) -> None:
    view = await _current(update, context)
    if view is None:
        return
    text, markup, _asks = await _switch_list(context, view, part, number)
    await edit_in_place(query, text, markup)


def _pages_the_list(data: object) -> bool:
    return TurnSwitchPage.parse(data) is not None or TurnFoundPage.parse(data) is not None


async def find_typed_name(update: Update, context: PortalContext) -> None:
    """Before any other handler: text typed while a /switch list asks for part of a name
    finds the people with it. Anything else the user does (a command, another button)
    ends the question, so that later text means what it would have meant anyway."""
    if context.user_data is None or SEARCH_KEY not in context.user_data:
        return
    asked = context.user_data.pop(SEARCH_KEY)
    query = update.callback_query
    if query is not None and _pages_the_list(query.data):
        context.user_data[SEARCH_KEY] = asked  # paging through the list keeps it open
        return
    message = update.message
    if message is None or message.text is None or filters.COMMAND.check_update(update):
        return
    if clock.time() - asked > context.portal.settings.conversation_timeout:
        return
    try:
        await _show_switch(update, context, message.text)
    except Exception as exc:
        # This text was the search: raised, PTB would report it and then hand the same
        # text to the handlers after this one ("Sorry, I didn't understand").
        await context.application.process_error(update, exc)
    await store_after_update(update, context)  # the update ends here, before group 99
    raise ApplicationHandlerStop


async def switch_to(update: Update, context: PortalContext) -> None:
    """A tap in /switch: re-checks the grant now, stores the choice, and shows that
    patient's upcoming appointments in place (the other views are one tap from there)."""
    tap = await patient_tap(update, context, SwitchTo)
    if tap is None:
        return
    query, _ = tap.query, context._
    tg = context.caller.telegram_user_id
    view = await access.switch_to(context.portal.db, tg, tap.data.patient)
    if view is None:
        await query.answer(_("You don't have access to that portal."), show_alert=True)
        return
    await answer_quietly(query)
    at = TurnPage(Area.APPOINTMENTS, view.subject.id, 0)
    shown = await appointments_screen(context, view, at)
    if isinstance(shown, Refusal):  # no level leaves appointments out today; if one ever does
        shown = refused_screen(_, view, Area.APPOINTMENTS)
    await edit_in_place(query, *shown)
