"""/activity: the access log of the portal being viewed (yours, or that of a dependent you
hold), newest first, in words: who did what, and to whose access."""

from __future__ import annotations

from telegram import Update

from bot import access, labels
from bot.access import LogPage, Viewing
from bot.callbacks import TurnLogPage
from bot.context import PortalContext
from bot.i18n import Translator
from bot.keyboards import Keyboard
from bot.policy import Rule
from bot.text import esc
from handlers.guard import require_viewing, tapped
from handlers.paging import page_row
from handlers.send import answer_quietly, edit_in_place, send_to_chat
from handlers.views import header, lost_notice
from storage.audit import ABOUT_A_GRANT, Action, Attempt
from storage.models import LogEntry
from storage.vocabulary import Level, Role

# Done by the practice (staff in the bot, or its command line and imports).
_BY_PRACTICE = frozenset(
    {
        Action.INVITE_CREATED,
        Action.UNLINKED,
        Action.PATIENT_IMPORTED,
        Action.FHIR_IMPORTED,
        Action.GRANT_SUSPENDED,
        Action.GRANT_RENEWED,  # by a practitioner; a patient who renews is named
    }
)
# Done by the practice's policy itself (bot/sweep.py), with the rule's name as the detail.
_BY_POLICY = frozenset(
    {
        Action.POLICY_LIMITED,
        Action.POLICY_ENDED,
        Action.POLICY_END_DATE,
        Action.POLICY_OWN_LOGIN,
        Action.POLICY_HOLDER_ENDED,
    }
)
# Typed by whoever opened an invite link before anyone signed in with it.
_BY_LINK_OPENER = frozenset({Action.SIGNIN_DOB_MISMATCH, Action.INVITE_LOCKED})
# Refused events whose words say so already.
_SAYS_REFUSED = frozenset(
    {Action.SWITCH_FALLBACK, Action.SIGNIN_DOB_MISMATCH, Action.INVITE_LOCKED}
)


def _access(_: Translator, code: str | None) -> str:
    """'Clinical, Edit' from a detail such as 'clinical/edit' or 'clinical/edit changed'."""
    level, _slash, role = (code or "").split(" ")[0].partition("/")
    try:
        return labels.access_summary(_, Level(level), Role(role))
    except ValueError:  # not a level and role (an older or different detail)
        return ""


def _rule(_: Translator, code: str | None) -> str:
    """The name of a rule of the practice's policy (bot/policy.py)."""
    names: dict[str, str] = {
        Rule.TEEN: _("teen age"),
        Rule.OWN_LOGIN: _("own login age"),
        Rule.ADULT: _("adult age"),
        Rule.TERM: _("end date"),
    }
    return names.get(code or "", _("the practice's policy"))


def _done(_: Translator, action: Action, e: LogEntry, whose: str) -> str:
    """What happened, for an event that was allowed. `whose` is the accessor of the grant
    the event is about (escaped), for the words that need it."""
    detail = e.event.detail
    by_accessor = e.accessor_id is not None and e.accessor_id == e.event.actor_patient_id
    if action is Action.GRANT_APPROVED:
        if detail == "as_holder":
            return _("took access to this account as the person who holds it")
        if by_accessor:  # an offer, accepted by the patient it was offered to
            return _("accepted access ({access})").format(access=_access(_, detail))
        return _("approved {name}'s access ({access})").format(
            name=whose, access=_access(_, detail)
        )
    if action is Action.GRANT_DENIED:
        if by_accessor:
            return _("declined the access offered to them")
        return _("declined {name}'s request for access").format(name=whose)
    if action is Action.GRANT_CHANGED:
        before, _arrow, after = (detail or "").partition(">")
        return _("changed {name}'s access from {before} to {after}").format(
            name=whose, before=_access(_, before), after=_access(_, after)
        )
    words = {
        Action.GRANT_REQUESTED: _("asked for access ({access})"),
        Action.GRANT_REVOKED: _("revoked {name}'s access"),
        Action.GRANT_LEFT: _("stopped accessing this portal"),
        Action.GRANT_WITHDRAWN: _("withdrew their request for access"),
        Action.GRANT_OFFERED: _("offered {name} access ({access})"),
        Action.GRANT_DECIDE: _("decided a request for access"),
        Action.DEPENDENT_CREATED: _("created this account"),
        Action.VIEW_APPOINTMENTS: _("viewed appointments"),
        Action.VIEW_INVOICES: _("viewed invoices"),
        Action.VIEW_RECORDS: _("viewed clinical records"),
        Action.VIEW_DETAILS: _("viewed details"),
        Action.APPOINTMENT_CANCELLED: _("cancelled an appointment"),
        Action.APPOINTMENT_CONFIRMED: _("confirmed an appointment"),
        Action.APPOINTMENT_CANCEL_ASKED: _("opened an appointment to cancel"),
        Action.SWITCH: _("switched to this portal"),
        Action.SWITCH_FALLBACK: _("lost access and was switched back"),
        Action.INVITE_CREATED: _("sent an invite link to this portal"),
        Action.INVITE_OWN_LOGIN: _("created an own-login link"),
        Action.INVITE_LOCKED: _("typed a third wrong date of birth, which locked the invite link"),
        Action.INVITE_BURNED_IN_GROUP: _(
            "posted an invite link to this portal in a group chat, so the link was cancelled"
        ),
        Action.SIGNIN_OK: _("signed in"),
        Action.SIGNIN_DOB_MISMATCH: _("typed a wrong date of birth"),
        Action.SIGNED_OUT: _("signed out of the portal on Telegram"),
        Action.UNLINKED: _("signed the Telegram account out of this portal"),
        Action.PATIENT_IMPORTED: _("updated this patient's details from the practice's records"),
        Action.FHIR_IMPORTED: _("imported records from the practice's system"),
        Action.POLICY_LIMITED: _("limited {name}'s access to Administrative (rule: {rule})"),
        Action.POLICY_ENDED: _("ended {name}'s access (rule: {rule})"),
        Action.POLICY_END_DATE: _("gave {name}'s access an end date (rule: {rule})"),
        Action.POLICY_OWN_LOGIN: _(
            "asked a practitioner to invite this patient to their own login (rule: {rule})"
        ),
        Action.POLICY_HOLDER_ENDED: _(
            "ended the account holder's say over this account (rule: {rule})"
        ),
        Action.GRANT_RENEWED: _("renewed {name}'s access"),
        Action.GRANT_KEPT: _("kept {name}'s access after coming of age"),
        Action.GRANT_CLINICAL_APPROVED: _("approved clinical access for {name}"),
        Action.GRANT_CONTINUED: _("approved {name}'s access continuing"),
        Action.GRANT_SUSPENDED: _("suspended {name}'s access"),
    }
    return words[action].format(name=whose, access=_access(_, detail), rule=_rule(_, detail))


def _tried(_: Translator, action: Action, e: LogEntry, whose: str) -> str | None:
    """What was attempted, for a refused event; None where the allowed words say it."""
    if action is Action.GRANT_DECIDE:
        try:
            attempt = Attempt(e.event.detail or "")
        except ValueError:
            attempt = Attempt.NOT_DECIDER
        return {
            Attempt.UNKNOWN: _("tried to decide a request for access that does not exist"),
            Attempt.NOT_DECIDER: _("tried to decide {name}'s request for access"),
            Attempt.REVOKE: _("tried to revoke {name}'s access"),
            Attempt.CHANGE: _("tried to change {name}'s access"),
            Attempt.LEAVE: _("tried to end {name}'s access"),
            Attempt.WITHDRAW: _("tried to withdraw {name}'s request for access"),
            Attempt.VIEW: _("tried to open the settings of {name}'s access"),
            Attempt.OFFER: _("tried to share this account with someone"),
            Attempt.HOLD: _("tried to manage this account as the person who holds it"),
            Attempt.ACTIVITY: _("tried to read this access log"),
            Attempt.RENEW: _("tried to renew {name}'s access"),
            Attempt.KEEP: _("tried to approve or keep {name}'s access"),
            Attempt.STOP_ALL: _("tried to stop all access to this portal"),
            Attempt.PRACTICE: _("tried to list or suspend access to this portal as the practice"),
        }[attempt].format(name=whose)
    words = {
        Action.VIEW_APPOINTMENTS: _("tried to view appointments"),
        Action.VIEW_INVOICES: _("tried to view invoices"),
        Action.VIEW_RECORDS: _("tried to view clinical records"),
        Action.VIEW_DETAILS: _("tried to view details"),
        Action.APPOINTMENT_CANCELLED: _("tried to cancel an appointment"),
        Action.APPOINTMENT_CONFIRMED: _("tried to confirm an appointment"),
        Action.APPOINTMENT_CANCEL_ASKED: _("tried to open an appointment to cancel"),
        Action.SWITCH: _("tried to switch to this portal"),
        Action.INVITE_CREATED: _(
            "tried to send an invite link with a date of birth that differs from the record"
        ),
        Action.INVITE_OWN_LOGIN: _("tried to create an own-login link"),
    }
    return words.get(action)


def _actor(_: Translator, e: LogEntry, subject_name: str, own: bool) -> str:
    """Who did it: a patient by name; otherwise the practice, someone who opened this
    portal's invite link, or someone (a Telegram user with no portal here)."""
    if e.actor_name:
        return esc(e.actor_name)
    action = e.event.action
    if action in _BY_PRACTICE:
        return _("The practice")
    if action in _BY_POLICY:
        return _("The practice's policy")
    if action in _BY_LINK_OPENER:
        if own:
            return _("Someone who opened your invite link")
        return _("Someone who opened {name}'s invite link").format(name=esc(subject_name))
    return _("Someone")


def describe(_: Translator, e: LogEntry, subject_name: str, own: bool) -> str:
    """One event as a line of the log: who, then what (HTML). `own`: the reader's own log."""
    who = _actor(_, e, subject_name, own)
    try:
        action = Action(e.event.action)
    except ValueError:  # a kind of event this version no longer records
        return _("{who} did something this version cannot show ({code})").format(
            who=who, code=esc(e.event.action)
        )
    about_grant = action is not Action.GRANT_DECIDE or e.event.detail in ABOUT_A_GRANT
    whose = esc(e.accessor_name) if e.accessor_name and about_grant else _("someone")
    if e.event.outcome == "refused" and action not in _SAYS_REFUSED:
        tried = _tried(_, action, e, whose) or _done(_, action, e, whose)
        what = _("{attempt} (refused)").format(attempt=tried)
    else:
        what = _done(_, action, e, whose)
    return f"<b>{who}</b> {what}"


def render(
    context: PortalContext, view: Viewing, page: LogPage, explain: str | None = None
) -> tuple[str, Keyboard | None]:
    """A page of a log (already read through bot.access) under the view's header line."""
    _ = context._
    subject = page.subject
    own = subject.id == view.me.id
    title = (
        _("📜 <b>Your access log</b>")
        if own
        else _("📜 <b>{name}'s access log</b>").format(name=esc(subject.full_name))
    )
    lines = [header(_, view), ""]
    if explain:
        lines += [explain, ""]
    lines.append(title)
    if not page.events:
        lines.append(_("Nothing yet."))
    tz = context.portal.settings.tz
    for entry in page.events:
        stamp = _.when(entry.event.at, tz)
        lines.append(f"• {stamp} — {describe(_, entry, subject.full_name, own)}")
    nav = page_row(_, page, lambda n: TurnLogPage(subject.id, n).encode())
    return "\n".join(lines), Keyboard([nav]) if nav else None


async def _tell_if_lost(update: Update, _: Translator, view: Viewing) -> None:
    """Access to the portal being viewed has just ended: said as every view says it."""
    notice = lost_notice(_, view)
    if notice:
        await send_to_chat(update, notice)


async def show_activity(update: Update, context: PortalContext) -> None:
    """/activity, or 📜 Activity on the home menu: the log of the portal being viewed,
    where the viewer may read it (their own, or a dependent's they hold); otherwise their
    own, saying why."""
    view = await require_viewing(update, context)
    if view is None:
        return
    _ = context._
    if update.callback_query:
        await answer_quietly(update.callback_query)
    await _tell_if_lost(update, _, view)
    shown = await access.log_for_view(context.portal.db, view)
    explain = None
    if shown.instead_of is not None:
        explain = _(
            "Only {name}, or the person who holds their account, can read {name}'s access "
            "log. Here is yours."
        ).format(name=esc(shown.instead_of.full_name))
    await send_to_chat(update, *render(context, view, shown.page, explain))


async def turn_log_page(update: Update, context: PortalContext) -> None:
    """◀ ▶ in a log, or 📜 <name>'s access log in /access: only the subject or the holder
    of their account may read it."""
    query, data = tapped(update, TurnLogPage)
    view = await require_viewing(update, context)
    if view is None:
        return
    _ = context._
    page = await access.access_log(context.portal.db, view.me.id, data.subject, data.page)
    if page is None:
        await query.answer(
            _("Only the patient, or the holder of their account, can read this log."),
            show_alert=True,
        )
        return
    await answer_quietly(query)
    await _tell_if_lost(update, _, view)
    await edit_in_place(query, *render(context, view, page))
