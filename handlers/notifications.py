"""/notifications: what the bot tells this login on its own — appointment reminders, new
invoices, new results — turned on or off per person they access (their own portal too),
and quiet hours. Stored with the login; every button edits the message in place.

A tap names a patient; whether the caller still accesses them is asked again (bot/access.py)
before their name is shown or anything is stored.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from telegram import CallbackQuery, Update

from bot import access, records
from bot.access import Area
from bot.callbacks import (
    Callback,
    ChooseNotificationsFor,
    ShiftQuietHours,
    ShowNotifications,
    ToggleQuietHours,
    ToggleTopic,
)
from bot.context import Caller, PortalContext
from bot.i18n import Translator
from bot.keyboards import Button, Keyboard
from bot.quiet import clock_text
from bot.text import esc
from handlers.guard import require_patient
from handlers.paging import page_row
from handlers.send import edit_in_place, send_to_chat
from storage import notifications
from storage.models import Grant
from storage.notifications import QuietHours, Topic

PAGE_SIZE = 10  # people per page; a carer may access hundreds
STARTS = (20 * 60, 21 * 60, 22 * 60, 23 * 60)  # what "Starts" steps through
ENDS = (6 * 60, 7 * 60, 8 * 60, 9 * 60)
K = TypeVar("K", bound=Callback)
PersonTap = TypeVar("PersonTap", ChooseNotificationsFor, ToggleTopic)  # a person's buttons


def _topics(_: Translator) -> dict[Topic, str]:
    return {
        Topic.REMINDERS: _("Appointment reminders"),
        Topic.INVOICES: _("New invoices"),
        Topic.RESULTS: _("New results"),
    }


def _next(choices: tuple[int, ...], current: int) -> int:
    """The choice after `current` (the first when it is not one of them)."""
    if current not in choices:
        return choices[0]
    return choices[(choices.index(current) + 1) % len(choices)]


# --- The first screen: quiet hours and the people ------------------------------------------


async def _home(context: PortalContext, who: Caller, number: int) -> tuple[str, Keyboard]:
    _ = who._
    assert who.patient is not None
    db = context.portal.db
    async with db.read() as conn:
        quiet = await notifications.quiet_hours(conn, who.telegram_user_id)
    people = await access.accessible(db, who.patient.id)
    page = records.page_of(people, number, PAGE_SIZE)
    lines = [
        _("🔔 <b>Notifications</b>"),
        "",
        _(
            "I remind you of appointments and tell you when a new invoice or result is "
            "ready, for you and for the people you access. Choose whose to change:"
        ),
        "",
    ]
    if quiet.on:
        lines.append(
            _(
                "🌙 Quiet hours {start}–{end}: reminders and notices wait until they end; a "
                "reminder due shortly before an appointment is skipped."
            ).format(start=clock_text(quiet.start), end=clock_text(quiet.end))
        )
    else:
        lines.append(_("🌙 Quiet hours are off: reminders and notices come at any time."))
    me = _("Me ({name})").format(name=who.patient.full_name)
    rows = [[_person_button(me, who.patient.id)]]
    rows += [[_person_button(e.other_name, e.grant.subject_id or 0)] for e in page.items]
    nav = page_row(_, page, lambda n: ShowNotifications(n).encode())
    if nav:
        rows.append(nav)
    toggle = _("🌙 Quiet hours: on") if quiet.on else _("🌙 Quiet hours: off")
    rows.append([Button(toggle, data=ToggleQuietHours().encode())])
    if quiet.on:
        rows.append(
            [
                Button(
                    _("Starts {time}").format(time=clock_text(quiet.start)),
                    data=ShiftQuietHours(False).encode(),
                ),
                Button(
                    _("Ends {time}").format(time=clock_text(quiet.end)),
                    data=ShiftQuietHours(True).encode(),
                ),
            ]
        )
    return "\n".join(lines), Keyboard(rows)


def _person_button(name: str, subject_id: int) -> Button:
    return Button(name[:64], data=ChooseNotificationsFor(subject_id).encode())


async def _signed_in(update: Update, context: PortalContext) -> Caller | None:
    """The caller, once the one guard has found them signed in (handlers/guard.py)."""
    return context.caller if await require_patient(update, context) is not None else None


async def show_notifications(update: Update, context: PortalContext) -> None:
    """/notifications: quiet hours, and whose reminders and notices to change."""
    who = await _signed_in(update, context)
    if who is None or update.effective_message is None:
        return
    text, markup = await _home(context, who, 0)
    await send_to_chat(update, text, markup)


async def back_to_notifications(update: Update, context: PortalContext) -> None:
    """◀ Back, or ◀ ▶ through the people: the first screen, in place."""
    tap = await _tap(update, context, ShowNotifications)
    if tap is not None:
        query, who, tapped = tap
        await _show_home(query, context, who, tapped.page)


async def toggle_quiet_hours(update: Update, context: PortalContext) -> None:
    """🌙 Quiet hours: on ⇄ off."""
    tap = await _tap(update, context, ToggleQuietHours)
    if tap is None:
        return
    query, who, _tapped = tap
    await _change_quiet(context, who, lambda q: q.model_copy(update={"on": not q.on}))
    await _show_home(query, context, who)


async def shift_quiet_hours(update: Update, context: PortalContext) -> None:
    """Starts / Ends: the next of a few choices, in turn."""
    tap = await _tap(update, context, ShiftQuietHours)
    if tap is None:
        return
    query, who, tapped = tap

    def shifted(quiet: QuietHours) -> QuietHours:
        if tapped.end:
            return quiet.model_copy(update={"end": _next(ENDS, quiet.end)})
        return quiet.model_copy(update={"start": _next(STARTS, quiet.start)})

    await _change_quiet(context, who, shifted)
    await _show_home(query, context, who)


async def _tap(
    update: Update, context: PortalContext, kind: type[K]
) -> tuple[CallbackQuery, Caller, K] | None:
    """A tap on /notifications' buttons and its data, once the caller is found signed in."""
    query = update.callback_query
    assert query is not None
    tapped = kind.parse(query.data)
    who = await _signed_in(update, context)
    if who is None or tapped is None:
        return None
    return query, who, tapped


async def _show_home(
    query: CallbackQuery, context: PortalContext, who: Caller, page: int = 0
) -> None:
    await query.answer()
    await edit_in_place(query, *await _home(context, who, page))


async def _change_quiet(
    context: PortalContext, who: Caller, change: Callable[[QuietHours], QuietHours]
) -> None:
    async with context.portal.db.transaction() as conn:
        quiet = await notifications.quiet_hours(conn, who.telegram_user_id)
        await notifications.set_quiet_hours(conn, who.telegram_user_id, change(quiet))


# --- One person: which kinds ----------------------------------------------------------------


async def _accessed(
    context: PortalContext, who: Caller, subject_id: int
) -> tuple[str, Grant | None] | None:
    """The caller's own portal (their name, no grant) or one they access now; None if not."""
    assert who.patient is not None
    if subject_id == who.patient.id:
        return who.patient.full_name, None
    for entry in await access.accessible(context.portal.db, who.patient.id):
        if entry.grant.subject_id == subject_id:
            return entry.other_name, entry.grant
    return None


async def _person_tapped(
    update: Update, context: PortalContext, kind: type[PersonTap]
) -> tuple[CallbackQuery, Caller, PersonTap, tuple[str, Grant | None]] | None:
    """A tap on one person's buttons, once the caller is signed in and still accesses them
    (asked again here: the button may be old or forged); else None, the tap refused."""
    tap = await _tap(update, context, kind)
    if tap is None:
        return None
    query, who, tapped = tap
    found = await _accessed(context, who, tapped.subject_id)
    if found is None:
        await query.answer(who._("You don't have access to that portal."), show_alert=True)
        return None
    return query, who, tapped, found


async def _person(
    context: PortalContext, who: Caller, subject_id: int, name: str, grant: Grant | None
) -> tuple[str, Keyboard]:
    _ = who._
    async with context.portal.db.read() as conn:
        muted = await notifications.mutes(conn, who.telegram_user_id)
    if grant is None:
        title = _("🔔 <b>Notifications about you</b>")
    else:
        title = _("🔔 <b>Notifications about {name}</b>").format(name=esc(name))
    shown = [
        topic
        for topic in Topic
        # Results only where the access includes clinical records.
        if topic is not Topic.RESULTS
        or access.may_be_told_as(grant.level if grant else None, Area.RECORDS)
    ]
    rows = []
    for topic in shown:
        mark = "🔕 " if (subject_id, topic) in muted else "✅ "
        label = mark + _topics(_)[topic]
        rows.append([Button(label, data=ToggleTopic(subject_id, topic).encode())])
    rows.append([Button(_("◀ Back"), data=ShowNotifications(0).encode())])
    text = "\n".join([title, "", _("Tap one to turn it on or off.")])
    return text, Keyboard(rows)


async def show_notifications_for(update: Update, context: PortalContext) -> None:
    """A person in /notifications: their reminders, invoices and results, each on or off."""
    opened = await _person_tapped(update, context, ChooseNotificationsFor)
    if opened is None:
        return
    query, who, tapped, found = opened
    await query.answer()
    await edit_in_place(query, *await _person(context, who, tapped.subject_id, *found))


async def toggle_topic(update: Update, context: PortalContext) -> None:
    """One kind of message about one person: on ⇄ off."""
    opened = await _person_tapped(update, context, ToggleTopic)
    if opened is None:
        return
    query, who, tapped, found = opened
    async with context.portal.db.transaction() as conn:
        now_muted = await notifications.muted(
            conn, who.telegram_user_id, tapped.subject_id, tapped.topic
        )
        await notifications.set_muted(
            conn, who.telegram_user_id, tapped.subject_id, tapped.topic, not now_muted
        )
    await query.answer()
    await edit_in_place(query, *await _person(context, who, tapped.subject_id, *found))
