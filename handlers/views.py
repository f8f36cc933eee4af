"""/switch and the portal views: appointments, invoices, clinical records, details.

Every view says whose portal it shows, and every view, page and action is checked by
bot.access at the moment of the request. Callback data names a subject and an item; it
never decides anything by itself.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from typing import Any

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.ext import (
    ApplicationHandlerStop,
    CallbackQueryHandler,
    CommandHandler,
    filters,
)

from bot import access, labels, measures, records
from bot.access import Act, ActOutcome, Area, Viewing
from bot.context import PortalContext
from bot.i18n import Translator
from bot.text import esc
from handlers.guard import tell_to_sign_in
from handlers.menu import CB_HOME_VIEW
from handlers.paging import page_row
from handlers.send import edit_in_place
from storage import clock
from storage.audit import Action
from storage.models import AccessEntry, Appointment
from storage.vocabulary import GrantStatus

CB_SWITCH = "sw:"  # sw:<patient id>
CB_SWITCH_PAGE = "swp:"  # swp:<page>:<part of a name, or nothing>
CB_PAGE = "pg:"  # pg:<u|p|i|r|d>:<subject id>:<page>
CB_APPOINTMENT = "apt:"  # apt:<ask|yes|keep|ok>:<subject id>:<appointment id>:<page>

_PAGE = re.compile(r"^pg:([upird]):(\d{1,18}):(\d{1,6})$")
_SWITCH = re.compile(r"^sw:(\d{1,18})$")
_SWITCH_PAGE = re.compile(r"^swp:(\d{1,6}):(.{0,60})$")
_APPOINTMENT = re.compile(r"^apt:(ask|yes|keep|ok):(\d{1,18}):(\d{1,18}):(\d{1,6})$")

_AREA = {
    "u": Area.APPOINTMENTS,
    "p": Area.APPOINTMENTS,
    "i": Area.INVOICES,
    "r": Area.RECORDS,
    "d": Area.DETAILS,
}
_AUDIT = {
    Area.APPOINTMENTS: Action.VIEW_APPOINTMENTS,
    Area.INVOICES: Action.VIEW_INVOICES,
    Area.RECORDS: Action.VIEW_RECORDS,
    Area.DETAILS: Action.VIEW_DETAILS,
}
_ACTS = {  # what a refused appointment button is audited as
    "ask": Action.APPOINTMENT_CANCEL_ASKED,
    "keep": Action.VIEW_APPOINTMENTS,
    "yes": Action.APPOINTMENT_CANCELLED,
    "ok": Action.APPOINTMENT_CONFIRMED,
}


# --- Words --------------------------------------------------------------------------------


def header(_: Translator, view: Viewing) -> str:
    """The first line of every view: whose records these are."""
    if view.grant is None:
        return _("👤 Viewing: your own portal")
    return _("👥 Viewing: {patient}").format(
        patient=labels.patient_line(_, view.subject.full_name, view.grant)
    )


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


def _status(_: Translator, status: str) -> str:
    return {
        "booked": _.pgettext("appointment status", "Booked"),
        "confirmed": _.pgettext("appointment status", "Confirmed"),
        "cancelled": _.pgettext("appointment status", "Cancelled"),
    }.get(status, status)


def _record_kind(_: Translator, kind: str) -> str:
    return {
        "condition": _.pgettext("record kind", "Condition"),
        "immunisation": _.pgettext("record kind", "Immunisation"),
        "result": _.pgettext("record kind", "Result"),
        "allergy": _.pgettext("record kind", "Allergy"),
        "note": _.pgettext("record kind", "Note"),
    }.get(kind, kind)


def _appointment_line(_: Translator, a: Appointment, context: PortalContext) -> str:
    tz = context.portal.settings.tz
    where = " · ".join(esc(x) for x in (a.practitioner, a.location) if x)
    mark = "❌ " if a.status == "cancelled" else ("✅ " if a.status == "confirmed" else "")
    return f"📅 <b>{_.when(a.starts_at, tz)}</b>\n{where}\n{mark}{_status(_, a.status)}"


def _nav(
    _: Translator, kind: str, subject_id: int, page: records.Page[Any]
) -> list[InlineKeyboardButton]:
    return page_row(_, page, lambda n: f"pg:{kind}:{subject_id}:{n}")


def _other_views(_: Translator, view: Viewing, kind: str) -> list[list[InlineKeyboardButton]]:
    """The same patient's other views, opened in place, and Switch: moving around a portal
    never needs a command. Records only when the access level includes them."""
    subject = view.subject.id
    names = {
        "u": _("📅 Appointments"),
        "i": _("🧾 Invoices"),
        "r": _("📋 Records"),
        "d": _("👤 Details"),
    }
    shown = "u" if kind == "p" else kind
    records_shared = view.grant is None or access.level_allows(view.grant.level, Area.RECORDS)
    buttons = [
        InlineKeyboardButton(label, callback_data=f"pg:{k}:{subject}:0")
        for k, label in names.items()
        if k != shown and (k != "r" or records_shared)
    ]
    buttons.append(InlineKeyboardButton(_("🔄 Switch patient"), callback_data=CB_HOME_VIEW + "s"))
    return [buttons[:2], buttons[2:]]


# --- Rendering ------------------------------------------------------------------------------


async def render(
    context: PortalContext, _: Translator, view: Viewing, kind: str, number: int
) -> tuple[str, InlineKeyboardMarkup]:
    """The text and buttons of one page; the caller has already checked access."""
    db = context.portal.db
    subject = view.subject.id
    lines = [header(_, view), ""]
    rows: list[list[InlineKeyboardButton]] = []
    if kind == "d":
        lines = [details_text(_, view)]
    elif kind in ("u", "p"):
        page = await records.appointments(db, subject, past=kind == "p", number=number)
        title = _("<b>Past appointments</b>") if kind == "p" else _("<b>Upcoming appointments</b>")
        lines.append(title)
        can_edit = view.grant is None or access.role_allows(view.grant.role, Act.EDIT)
        for a in page.items:
            lines += ["", _appointment_line(_, a, context)]
            if kind == "u" and can_edit and a.status != "cancelled":
                day = _.short_day(a.starts_at, context.portal.settings.tz)
                actions = [
                    InlineKeyboardButton(
                        _("Cancel {day}").format(day=day),
                        callback_data=f"apt:ask:{subject}:{a.id}:{number}",
                    )
                ]
                if a.status == "booked":
                    actions.append(
                        InlineKeyboardButton(
                            _("Confirm {day}").format(day=day),
                            callback_data=f"apt:ok:{subject}:{a.id}:{number}",
                        )
                    )
                rows.append(actions)
        if not page.items:
            lines += [
                "",
                _("No past appointments.") if kind == "p" else _("No upcoming appointments."),
            ]
        nav = _nav(_, kind, subject, page)
        toggle = (
            InlineKeyboardButton(_("Upcoming"), callback_data=f"pg:u:{subject}:0")
            if kind == "p"
            else InlineKeyboardButton(_("Past appointments"), callback_data=f"pg:p:{subject}:0")
        )
        rows += [r for r in (nav, [toggle]) if r]
    elif kind == "i":
        inv = await records.invoices(db, subject, number=number)
        lines.append(_("<b>Invoices</b>"))
        for i in inv.items:
            state = _.pgettext("invoice", "Paid") if i.paid else _.pgettext("invoice", "Unpaid")
            lines += [
                "",
                f"🧾 <b>{esc(i.number)}</b> · {_.date(i.issued_on)}\n"
                f"{_.money(i.amount_minor, i.currency)} · {state}",
            ]
        if not inv.items:
            lines += ["", _("No invoices.")]
        rows += [r for r in (_nav(_, kind, subject, inv),) if r]
    else:
        rec = await records.clinical_records(db, subject, number=number)
        lines.append(_("<b>Clinical records</b>"))
        for r in rec.items:
            shown = ", ".join(
                x for x in (measures.render(r.measurement, _.format_locale), r.details) if x
            )
            detail = f"\n{esc(shown)}" if shown else ""
            day = _.date(r.recorded_on) if r.recorded_on else _("date not recorded")
            kind_and_date = f"{_record_kind(_, r.kind)} · {day}"
            lines += ["", f"📋 <b>{esc(r.title)}</b>\n{kind_and_date}{detail}"]
        if not rec.items:
            lines += ["", _("No clinical records.")]
        rows += [r for r in (_nav(_, kind, subject, rec),) if r]
    rows += [r for r in _other_views(_, view, kind) if r]
    return "\n".join(lines), InlineKeyboardMarkup(rows)


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


# --- Sending -------------------------------------------------------------------------------


async def _send(update: Update, text: str, markup: InlineKeyboardMarkup | None = None) -> None:
    """A new message in the chat. A tapped button was answered by _current already: a
    second answer is refused by Telegram, and the view would never be sent."""
    assert update.effective_chat is not None
    await update.get_bot().send_message(update.effective_chat.id, text, reply_markup=markup)


async def _edit(update: Update, text: str, markup: InlineKeyboardMarkup | None) -> None:
    assert update.callback_query is not None
    await edit_in_place(update.callback_query, text, markup)


async def _current(update: Update, context: PortalContext) -> tuple[Translator, Viewing | None]:
    who = context.caller
    _ = who._
    view = await access.viewing(context.portal.db, who.telegram_user_id)
    if view is None:
        await tell_to_sign_in(update, _)
        return _, None
    if update.callback_query:  # the one answer to a home-menu tap, whatever is sent next
        await update.callback_query.answer()
    notice = lost_notice(_, view)
    if notice:
        await _send(update, notice)
    return _, view


async def _show(update: Update, context: PortalContext, kind: str) -> None:
    _, view = await _current(update, context)
    if view is None:
        return
    area = _AREA.get(kind, Area.DETAILS)
    allowed = await access.authorize(context.portal.db, view, area, Act.VIEW, action=_AUDIT[area])
    if not allowed.allowed:
        await _send(update, header(_, view) + "\n\n" + refusal(_, view, area))
        return
    text, markup = await render(context, _, view, kind, 0)
    await _send(update, text, markup)


async def show_appointments(update: Update, context: PortalContext) -> None:
    """/appointments: upcoming appointments of the patient being viewed."""
    await _show(update, context, "u")


async def show_invoices(update: Update, context: PortalContext) -> None:
    """/invoices: invoices of the patient being viewed."""
    await _show(update, context, "i")


async def show_records(update: Update, context: PortalContext) -> None:
    """/records: clinical records, for Clinical access only."""
    await _show(update, context, "r")


async def show_details(update: Update, context: PortalContext) -> None:
    """/details: name, date of birth and email of the patient being viewed."""
    await _show(update, context, "d")


async def home_view(update: Update, context: PortalContext) -> None:
    """A home-menu button for a view or /switch."""
    query = update.callback_query
    assert query is not None and query.data is not None
    kind = query.data.removeprefix(CB_HOME_VIEW)
    if kind == "s":
        await show_switch(update, context)
    elif kind in ("u", "i", "r", "d"):
        await _show(update, context, kind)
    else:
        await query.answer()


async def turn_page(update: Update, context: PortalContext) -> None:
    """◀ ▶ and the Past/Upcoming toggle: re-checks access, edits the page in place."""
    query = update.callback_query
    assert query is not None and query.data is not None
    who = context.caller
    _ = who._
    match = _PAGE.match(query.data)
    view = (
        await access.view_of(
            context.portal.db,
            who.telegram_user_id,
            int(match[2]),
            action=_AUDIT[_AREA[match[1]]],
        )
        if match
        else None
    )
    if match is None or view is None:
        await query.answer(_("You no longer have access to this portal."), show_alert=True)
        return
    kind, number = match[1], int(match[3])
    area = _AREA[kind]
    allowed = await access.authorize(context.portal.db, view, area, Act.VIEW, action=_AUDIT[area])
    if not allowed.allowed:
        await query.answer(refusal(_, view, area, html=False)[:200], show_alert=True)
        return
    await query.answer()
    text, markup = await render(context, _, view, kind, number)
    await _edit(update, text, markup)


# --- Appointment actions -------------------------------------------------------------------


async def act_on_appointment(update: Update, context: PortalContext) -> None:
    """Cancel (after a confirm step) or confirm attendance; Edit role only, checked per item."""
    query = update.callback_query
    assert query is not None and query.data is not None
    who = context.caller
    _ = who._
    match = _APPOINTMENT.match(query.data)
    db = context.portal.db
    view = (
        await access.view_of(db, who.telegram_user_id, int(match[2]), action=_ACTS[match[1]])
        if match
        else None
    )
    if match is None or view is None:
        await query.answer(_("You no longer have access to this portal."), show_alert=True)
        return
    verb, appointment_id, number = match[1], int(match[3]), int(match[4])
    if verb == "keep":
        await query.answer()
        text, markup = await render(context, _, view, "u", number)
        await _edit(update, text, markup)
        return
    if verb == "ask":
        item = await records.appointment(db, appointment_id)
        permitted = await access.authorize(
            db, view, Area.APPOINTMENTS, Act.EDIT, action=Action.APPOINTMENT_CANCEL_ASKED
        )
        if item is None or item.patient_id != view.subject.id or not permitted.allowed:
            await query.answer(_("You can't change this appointment."), show_alert=True)
            return
        await query.answer()
        text = "\n".join(
            [
                header(_, view),
                "",
                _("Cancel this appointment?"),
                "",
                _appointment_line(_, item, context),
            ]
        )
        markup = InlineKeyboardMarkup(
            [
                [
                    InlineKeyboardButton(
                        _("Yes, cancel it"),
                        callback_data=f"apt:yes:{view.subject.id}:{appointment_id}:{number}",
                    ),
                    InlineKeyboardButton(
                        _("No, keep it"),
                        callback_data=f"apt:keep:{view.subject.id}:{appointment_id}:{number}",
                    ),
                ]
            ]
        )
        await _edit(update, text, markup)
        return
    action = "cancel" if verb == "yes" else "confirm"
    outcome = await access.act_on_appointment(
        db, view.me.id, view.subject.id, appointment_id, action
    )
    if outcome is ActOutcome.REFUSED:
        await query.answer(_("You can't change this appointment."), show_alert=True)
        return
    if outcome is ActOutcome.ALREADY:
        await query.answer(_("This appointment has already been changed."), show_alert=True)
    else:
        await query.answer(
            _("Appointment cancelled.") if action == "cancel" else _("Attendance confirmed.")
        )
    text, markup = await render(context, _, view, "u", number)
    await _edit(update, text, markup)


# --- /switch ---------------------------------------------------------------------------------


SWITCH_PAGE_SIZE = 10  # people per /switch page; a carer may access hundreds
SEARCH_KEY = "switch_search"  # in user_data: when /switch last asked to type a name
SEARCH_MAX = 50  # characters of a name to look for


def _folded(text: str) -> str:
    """For finding names: case and accents do not count ("zoe" finds Zoë)."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def _switch_page_data(part: str) -> Callable[[int], str]:
    """Callback data for page n of the list found with `part` of a name, in 64 bytes: a
    longer part is cut (which finds more, never fewer)."""

    def data(n: int) -> str:
        head = f"{CB_SWITCH_PAGE}{n}:"
        room = 64 - len(head.encode())
        return head + part.encode()[:room].decode(errors="ignore")

    return data


def _switch_keyboard(
    _: Translator, view: Viewing, page: records.Page[AccessEntry], nav: list[InlineKeyboardButton]
) -> InlineKeyboardMarkup:
    rows = []
    mark = "● "
    me_label = (mark if view.grant is None else "") + _("Me ({name})").format(
        name=view.me.full_name
    )
    rows.append([InlineKeyboardButton(me_label[:64], callback_data=f"sw:{view.me.id}")])
    for e in page.items:
        grant = e.grant
        relationship = labels.grant_relationship(_, grant)
        label = f"{e.other_name} ({relationship}) · {labels.level(_, grant.level)}"
        current = view.grant is not None and view.subject.id == grant.subject_id
        label = (mark if current else "") + label
        rows.append([InlineKeyboardButton(label, callback_data=f"sw:{grant.subject_id}")])
    if nav:
        rows.append(nav)
    return InlineKeyboardMarkup(rows)


async def _switch_list(
    context: PortalContext, _: Translator, view: Viewing, part: str, number: int
) -> tuple[str, InlineKeyboardMarkup, bool]:
    """Page `number` of the people this patient accesses (only those whose name has
    `part`, when given), and whether it asks to type part of a name: when everyone
    takes more than one page."""
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


async def _show_switch(update: Update, context: PortalContext, typed: str) -> None:
    _, view = await _current(update, context)
    if view is None:
        return
    part = " ".join(typed.split())[:SEARCH_MAX]
    text, markup, asks = await _switch_list(context, _, view, part, 0)
    await _send(update, text, markup)
    _ask_for_a_name(context, asks)


async def turn_switch_page(update: Update, context: PortalContext) -> None:
    """◀ ▶ in a /switch list: that page, in place, of the same people."""
    query = update.callback_query
    assert query is not None and query.data is not None
    match = _SWITCH_PAGE.match(query.data)
    _, view = await _current(update, context)
    if view is None:
        return
    part, number = (match[2], int(match[1])) if match else ("", 0)
    text, markup, _asks = await _switch_list(context, _, view, part, number)
    await _edit(update, text, markup)


async def find_typed_name(update: Update, context: PortalContext) -> None:
    """Before any other handler: text typed while a /switch list asks for part of a name
    finds the people with it. Anything else the user does (a command, another button)
    ends the question, so that later text means what it would have meant anyway."""
    if context.user_data is None or SEARCH_KEY not in context.user_data:
        return
    asked = context.user_data.pop(SEARCH_KEY)
    query = update.callback_query
    if query is not None and (query.data or "").startswith(CB_SWITCH_PAGE):
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
    raise ApplicationHandlerStop


async def switch_to(update: Update, context: PortalContext) -> None:
    """A tap in /switch: re-checks the grant now, stores the choice, and shows that
    patient's upcoming appointments in place (the other views are one tap from there)."""
    query = update.callback_query
    assert query is not None and query.data is not None
    who = context.caller
    _ = who._
    match = _SWITCH.match(query.data)
    db = context.portal.db
    view = await access.switch_to(db, who.telegram_user_id, int(match[1])) if match else None
    if view is None:
        await query.answer(_("You don't have access to that portal."), show_alert=True)
        return
    allowed = await access.authorize(
        db, view, Area.APPOINTMENTS, Act.VIEW, action=_AUDIT[Area.APPOINTMENTS]
    )
    await query.answer()
    if not allowed.allowed:  # no level leaves appointments out today; if one ever does
        text = header(_, view) + "\n\n" + refusal(_, view, Area.APPOINTMENTS)
        await _edit(update, text, InlineKeyboardMarkup(_other_views(_, view, "u")))
        return
    await _edit(update, *await render(context, _, view, "u", 0))


def view_handlers() -> list[object]:
    return [
        CommandHandler("switch", show_switch),
        CommandHandler("appointments", show_appointments),
        CommandHandler("invoices", show_invoices),
        CommandHandler("records", show_records),
        CommandHandler("details", show_details),
        CallbackQueryHandler(switch_to, pattern=r"^sw:"),
        CallbackQueryHandler(turn_switch_page, pattern=r"^swp:"),
        CallbackQueryHandler(turn_page, pattern=r"^pg:"),
        CallbackQueryHandler(act_on_appointment, pattern=r"^apt:"),
        CallbackQueryHandler(home_view, pattern=r"^home:v:"),
    ]
