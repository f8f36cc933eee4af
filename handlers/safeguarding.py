"""The buttons of the practice's policy (issue #20): on its notices and cards (approve or
deny a person's access as a young person, keep it past the adult birthday, renew it, ask
for it to be renewed; a practitioner renews or ends it) and "Stop all access" in /access.

Each answers the tap first, then asks bot/safeguarding.py, which checks on the server who
asks: the button names only what was tapped. The card then says what happened, without
its buttons; whom else it concerns hears through the outbox.
"""

from __future__ import annotations

from telegram import CallbackQuery, Update

from bot import access, policy, safeguarding
from bot.callbacks import (
    ApproveClinical,
    AskPatientToRenew,
    AskToStopAll,
    BackToAccess,
    ContinueAccess,
    EndAccessAsYoung,
    EndForPatient,
    KeepAdministrative,
    KeepAfterAdulthood,
    RenewAccess,
    RenewForPatient,
    StopAllAccess,
)
from bot.context import PortalContext
from bot.keyboards import Button, Keyboard
from bot.policy import Rule
from bot.safeguarding import Outcome, Result
from bot.text import esc
from handlers.guard import patient_tap, tapped
from handlers.manage import overview_screen
from handlers.send import answer_quietly, edit_in_place
from storage.models import Grant, Patient

Words = tuple[Grant, Patient, Patient]  # the grant, its accessor, its subject


async def _settled(
    query: CallbackQuery, context: PortalContext, result: Result, done: str | None
) -> Words | None:
    """Answer the tap for a refusal or a change that no longer applies (the card then
    says so); the grant's parties when it was done."""
    _ = context._
    if result.outcome is Outcome.NOT_YOURS:
        await answer_quietly(query, _("You can't change this access."), alert=True)
        return None
    await answer_quietly(query, done if result.outcome is Outcome.DONE else None)
    if result.outcome is Outcome.ALREADY:
        await edit_in_place(query, _("This has already changed: nothing more to do here."))
        return None
    return await access.grant_parties(context.portal.db, result.grant.id if result.grant else 0)


def _day(context: PortalContext, at: int | None) -> str:
    return context._.day_of(at, context.portal.settings.tz) if at else ""


# --- The young person's card ---------------------------------------------------------------


async def continue_access(update: Update, context: PortalContext) -> None:
    """✅ Approve on a young person's card: this person's access continues."""
    tap = await patient_tap(update, context, ContinueAccess)
    if tap is None:
        return
    result = await safeguarding.continue_access(context.portal.db, tap.me.id, tap.data.grant)
    if (parties := await _settled(tap.query, context, result, context._("Done."))) is not None:
        text = context._("You approved: {name}'s access to your portal continues.")
        await edit_in_place(tap.query, text.format(name=esc(parties[1].full_name)))


async def deny_access(update: Update, context: PortalContext) -> None:
    """❌ Deny on a young person's card: this person's access ends; they are told."""
    tap = await patient_tap(update, context, EndAccessAsYoung)
    if tap is None:
        return
    _ = context._
    changed = await access.revoke(context.portal.db, tap.me.id, tap.data.grant)
    result = Result(Outcome(changed.outcome.value), changed.grant)
    if (parties := await _settled(tap.query, context, result, _("Done."))) is not None:
        text = _("You denied: {name}'s access to your portal has ended.")
        await edit_in_place(tap.query, text.format(name=esc(parties[1].full_name)))


async def approve_clinical(update: Update, context: PortalContext) -> None:
    """✅ Approve on a young person's card: this person sees their clinical records again."""
    tap = await patient_tap(update, context, ApproveClinical)
    if tap is None:
        return
    result = await safeguarding.approve_clinical(context.portal.db, tap.me.id, tap.data.grant)
    if (parties := await _settled(tap.query, context, result, context._("Done."))) is not None:
        text = context._("You approved: {name} can see your clinical records again.")
        await edit_in_place(tap.query, text.format(name=esc(parties[1].full_name)))


async def keep_administrative(update: Update, context: PortalContext) -> None:
    """❌ Deny on a young person's Clinical card: nothing changes, and the card says so."""
    tap = await patient_tap(update, context, KeepAdministrative)
    if tap is None:
        return
    _ = context._
    parties = await access.grant_parties(context.portal.db, tap.data.grant)
    if parties is None or parties[2].id != tap.me.id:
        await answer_quietly(tap.query, _("You can't change this access."), alert=True)
        return
    await answer_quietly(tap.query)
    text = _("{name} keeps seeing only your appointments and invoices, not your clinical records.")
    await edit_in_place(tap.query, text.format(name=esc(parties[1].full_name)))


# --- Before a change: keep, renew, ask to renew --------------------------------------------


async def keep_access(update: Update, context: PortalContext) -> None:
    """Keep <name>'s access, on the notice before the adult birthday."""
    tap = await patient_tap(update, context, KeepAfterAdulthood)
    if tap is None:
        return
    _ = context._
    db = context.portal.db
    result = await safeguarding.keep_after_adulthood(db, tap.me.id, tap.data.grant)
    if (parties := await _settled(tap.query, context, result, _("Done."))) is not None:
        grant, accessor, _subject = parties
        text = _("You kept {name}'s access to your portal after you turn {age}.").format(
            name=esc(accessor.full_name), age=policy.current().age_of(Rule.ADULT)
        )
        if grant.ends_at:
            text += " " + _("It now ends on {date}.").format(date=_day(context, grant.ends_at))
        await edit_in_place(tap.query, text)


async def renew_access(update: Update, context: PortalContext) -> None:
    """Renew <name>'s access: a new term from today."""
    tap = await patient_tap(update, context, RenewAccess)
    if tap is None:
        return
    result = await safeguarding.renew(context.portal.db, tap.me.id, tap.data.grant)
    if (parties := await _settled(tap.query, context, result, context._("Done."))) is not None:
        text = context._("You renewed {name}'s access to your portal: it now ends on {date}.")
        when = _day(context, parties[0].ends_at)
        await edit_in_place(tap.query, text.format(name=esc(parties[1].full_name), date=when))


async def ask_to_renew(update: Update, context: PortalContext) -> None:
    """Ask <name> to renew, on the notice to the person with access."""
    tap = await patient_tap(update, context, AskPatientToRenew)
    if tap is None:
        return
    result = await safeguarding.ask_to_renew(context.portal.db, tap.me.id, tap.data.grant)
    if (parties := await _settled(tap.query, context, result, context._("Done."))) is not None:
        text = context._("{subject} has been asked to renew your access to their portal.")
        await edit_in_place(tap.query, text.format(subject=esc(parties[2].full_name)))


# --- A practitioner's card ------------------------------------------------------------------


async def _practitioner(update: Update, context: PortalContext) -> bool:
    """Only the practice renews or ends access for a patient without a login."""
    if context.caller.is_practitioner:
        return True
    assert update.callback_query is not None
    text = context._("Sorry, only practitioners of the practice can do this.")
    await answer_quietly(update.callback_query, text, alert=True)
    return False


async def renew_for_patient(update: Update, context: PortalContext) -> None:
    """Renew, on a practitioner's card: a new term for access to a patient without a login."""
    query, data = tapped(update, RenewForPatient)
    if not await _practitioner(update, context):
        return
    _ = context._
    db, me = context.portal.db, context.caller.telegram_user_id
    result = await safeguarding.renew_by_practice(db, data.grant, me)
    if (parties := await _settled(query, context, result, _("Done."))) is not None:
        grant, accessor, subject = parties
        text = _("Renewed: {name}'s access to the portal of {subject} now ends on {date}.")
        names = {"name": esc(accessor.full_name), "subject": esc(subject.full_name)}
        await edit_in_place(query, text.format(date=_day(context, grant.ends_at), **names))


async def end_for_patient(update: Update, context: PortalContext) -> None:
    """End, on a practitioner's card: the access ends now; both sides hear only that."""
    query, data = tapped(update, EndForPatient)
    if not await _practitioner(update, context):
        return
    _ = context._
    db, me = context.portal.db, context.caller.telegram_user_id
    result = await safeguarding.suspend_by_practitioner(db, data.grant, me)
    if (parties := await _settled(query, context, result, _("Done."))) is not None:
        _grant, accessor, subject = parties
        text = _(
            "Ended: {name}'s access to the portal of {subject}. Those concerned are told only "
            "that it ended, not who ended it."
        )
        names = {"name": esc(accessor.full_name), "subject": esc(subject.full_name)}
        await edit_in_place(query, text.format(**names))


# --- Stop all access ------------------------------------------------------------------------


async def ask_to_stop_all(update: Update, context: PortalContext) -> None:
    """⛔ Stop all access: asks Yes or No first, saying who would lose access."""
    tap = await patient_tap(update, context, AskToStopAll)
    if tap is None:
        return
    _ = context._
    db = context.portal.db
    async with db.read() as conn:
        allowed = await access.may_decide(conn, tap.me.id, tap.data.patient)
    found = await safeguarding.who_has_access(db, tap.data.patient) if allowed else None
    if found is None:
        await answer_quietly(tap.query, _("You can't change this access."), alert=True)
        return
    await answer_quietly(tap.query)
    subject, lines = found
    people = sorted({esc(line.entry.other_name) for line in lines if line.level is not None})
    own = subject.id == tap.me.id
    text = (
        _("Stop all access to your portal?")
        if own
        else _("Stop all access to {name}'s portal?").format(name=esc(subject.full_name))
    )
    text += "\n\n" + (
        _("These people lose access at once: {names}.").format(names=", ".join(people))
        if people
        else _("Nobody has access now.")
    )
    text += "\n" + _(
        "Requests waiting are declined. Each person is told only that their access ended, "
        "not by whom or why."
    )
    yes = Button(_("Yes"), data=StopAllAccess(subject.id).encode())
    no = Button(_("No"), data=BackToAccess().encode())
    await edit_in_place(tap.query, text, Keyboard([[yes, no]]))


async def stop_all(update: Update, context: PortalContext) -> None:
    """Yes under "Stop all access …?": every access ends, every request is declined."""
    tap = await patient_tap(update, context, StopAllAccess)
    if tap is None:
        return
    _ = context._
    stopped = await safeguarding.stop_all_access(context.portal.db, tap.me.id, tap.data.patient)
    if not stopped.allowed:
        await answer_quietly(tap.query, _("You can't change this access."), alert=True)
        return
    await answer_quietly(tap.query, _("Done."))
    text, markup = await overview_screen(context, tap.me.id)
    said = _("All access stopped: {ended} ended, {declined} requests declined.").format(
        ended=stopped.ended, declined=stopped.declined
    )
    await edit_in_place(tap.query, said + "\n\n" + text, markup)
