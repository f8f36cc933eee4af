"""/access: who you access, who accesses you (and your dependents), and what is pending —
one message, edited in place as you act. Every button is re-checked by bot.access."""

from __future__ import annotations

import datetime as dt
import logging
from urllib.parse import quote

from telegram import Update

from bot import access, invitations, labels, safeguarding
from bot.access import ChangeOutcome, ChangeResult, ManagedGrant, Refusal
from bot.callbacks import (
    ApproveRequest,
    AskPatientToRenew,
    AskToLeave,
    AskToRevoke,
    AskToStopAll,
    BackToAccess,
    ChangeLevel,
    ChangeRole,
    DenyRequest,
    GiveOwnLogin,
    KeepAfterAdulthood,
    OpenDependent,
    OpenGrant,
    RenewAccess,
    RevokeAccess,
    ShareDependent,
    StopAccessing,
    SwitchTo,
    TurnLogPage,
    WithdrawRequest,
)
from bot.context import PortalContext
from bot.i18n import Translator
from bot.keyboards import Button, Keyboard
from bot.qr import qr_png
from bot.text import esc
from bot.tokens import deep_link
from handlers.guard import K, Tap, patient_tap, require_patient
from handlers.send import answer_quietly, edit_in_place, keyboard, send_to_chat
from storage.models import AccessEntry, Patient
from storage.vocabulary import Level, Role

log = logging.getLogger(__name__)

MAX_BUTTONS = 90

Screen = tuple[str, Keyboard | None]


def _button(label: str, data: str) -> Button:
    return Button(label, data=data)


# --- The whole picture ------------------------------------------------------------------------


def _since(_: Translator, timestamp: int | None, tz: dt.tzinfo) -> str:
    if not timestamp:
        return ""
    return _("since {date}").format(date=_.day_of(timestamp, tz))


async def overview_screen(context: PortalContext, me: int) -> Screen:
    """Everyone this patient accesses, who accesses them and their dependents, the
    accounts they hold and what is pending, with a button for each."""
    _ = context._
    o = await access.overview(context.portal.db, me)
    lines = [_("🔐 <b>Access</b>"), ""]
    rows: list[list[Button]] = []
    for part_lines, part_rows in (
        _accessing(_, o, context.portal.settings.tz),
        _accessors(_, o, me, context.portal.settings.tz),
        _held(_, o),
        _pending(_, o),
    ):
        lines += part_lines
        rows += part_rows
    if sum(len(r) for r in rows) > MAX_BUTTONS:  # Telegram refuses more than 100 per message
        while sum(len(r) for r in rows) > MAX_BUTTONS:
            rows.pop()
        lines += ["", _("Not everyone above has a button: there are too many for one message.")]
    if o.accessors.get(me) or any(e.grant.subject_id == me for e in o.incoming):
        rows.append(stop_all_button(_, me, None))  # after the cut: always there
    if context.caller.is_practitioner:  # handlers/practice_access.py
        lines += [
            "",
            _(
                "As a practitioner: send /access with a patient's name to see who has access "
                "to their portal."
            ),
        ]
    return "\n".join(lines), keyboard(rows)


Part = tuple[list[str], list[list[Button]]]


def _accessing(_: Translator, o: access.Overview, tz: dt.tzinfo) -> Part:
    lines = [_("<b>Patients you access</b>")]
    if not o.accessing:
        lines.append(_("Nobody yet. Send /addpatient to add someone."))
    rows = []
    for e in o.accessing:
        since = _since(_, e.grant.decided_at, tz)
        lines.append("• " + labels.patient_line(_, e.other_name, e.grant) + " — " + since)
        lines += _until(_, e, o, tz, own=False)
        rows.append([_button(e.other_name + " ›", OpenGrant(e.grant.id).encode())])
    return lines, rows


def _until(
    _: Translator, e: AccessEntry, o: access.Overview, tz: dt.tzinfo, *, own: bool
) -> list[str]:
    """Under a grant's line: when the practice's policy next changes it, if it does."""
    until = labels.until(_, e.grant, o.subjects[e.grant.id], tz, own=own)
    return ["   " + until] if until else []


def _accessors(_: Translator, o: access.Overview, me: int, tz: dt.tzinfo) -> Part:
    """Who accesses me, and each dependent I hold."""
    lines: list[str] = []
    rows = []
    held_names = {d.id: d.full_name for d in o.held}
    for subject_id, everyone in o.accessors.items():
        mine = subject_id == me
        # A holder's own access to their dependent is listed under "Patients you access"
        # already; here they want to see who else can look.
        entries = everyone if mine else [e for e in everyone if e.grant.accessor_id != me]
        if not mine and not entries:
            continue
        if mine:
            lines += ["", _("<b>People who access you</b>")]
        else:
            whom = esc(held_names[subject_id])
            lines += ["", _("<b>People who access {name}</b>").format(name=whom)]
        if not entries:
            lines.append(_("Nobody."))
        for e in entries:
            # The stored relationship says what the subject is to the accessor, so it
            # would read backwards here: show who and how much only.
            summary = labels.access_summary(_, e.grant.level, e.grant.role)
            lines.append(f"• {esc(e.other_name)} · {summary}")
            lines += _until(_, e, o, tz, own=mine)
            label = (
                _("{name} (accesses you) ›").format(name=e.other_name)
                if mine
                else _("{name} (accesses {whom}) ›").format(
                    name=e.other_name, whom=held_names[subject_id]
                )
            )
            rows.append([_button(label, OpenGrant(e.grant.id).encode())])
    return lines, rows


def _held(_: Translator, o: access.Overview) -> Part:
    if not o.held:
        return [], []
    lines = ["", _("<b>Accounts you hold</b>")]
    rows = []
    for d in o.held:
        lines.append("• " + esc(d.full_name))
        label = _("{name}'s account ›").format(name=d.full_name)
        rows.append([_button(label, OpenDependent(d.id).encode())])
    return lines, rows


def _pending(_: Translator, o: access.Overview) -> Part:
    """Requests to decide, offers to answer and one's own requests to withdraw: a line and
    a row of buttons each."""
    lines: list[str] = []
    rows: list[list[Button]] = []

    def add(e: AccessEntry, line: str, buttons: list[tuple[str, str]]) -> None:
        summary = labels.access_summary(_, e.grant.level, e.grant.role)
        lines.append("• " + line.format(name=esc(e.other_name), access=summary))
        rows.append([_button(label.format(name=e.other_name), data) for label, data in buttons])

    for e in o.incoming:
        decide = [
            (_("✅ Approve {name}"), ApproveRequest(e.grant.id).encode()),
            (_("❌ Deny"), DenyRequest(e.grant.id).encode()),
        ]
        add(e, _("{name} asks for access: {access}"), decide)
    for e in o.offers:
        answer = [
            (_("✅ Accept {name}"), ApproveRequest(e.grant.id).encode()),
            (_("❌ Decline"), DenyRequest(e.grant.id).encode()),
        ]
        add(e, _("You're offered access to {name}: {access}"), answer)
    for e in o.outgoing:
        withdraw = [(_("Withdraw request for {name}"), WithdrawRequest(e.grant.id).encode())]
        add(e, _("Your request for {name} is waiting: {access}"), withdraw)
    return (["", _("<b>Pending</b>"), *lines], rows) if lines else ([], [])


async def show_access(update: Update, context: PortalContext) -> None:
    """/access, or 🔐 Access on the home menu: the whole picture in a new message."""
    me = await require_patient(update, context)
    if me is None:
        return
    if update.callback_query:
        await answer_quietly(update.callback_query)
    await send_to_chat(update, *await overview_screen(context, me.id))


async def back_to_access(update: Update, context: PortalContext) -> None:
    """◀ Back: the whole picture again, in place."""
    tap = await patient_tap(update, context, BackToAccess)
    if tap is None:
        return
    await answer_quietly(tap.query)
    await edit_in_place(tap.query, *await overview_screen(context, tap.me.id))


async def _refresh(tap: Tap[K], context: PortalContext, alert: str) -> None:
    """Say why the tap did nothing, and show the picture as it is now."""
    await answer_quietly(tap.query, alert, alert=True)
    await edit_in_place(tap.query, *await overview_screen(context, tap.me.id))


def stop_all_button(_: Translator, patient_id: int, name: str | None) -> list[Button]:
    """The one button that ends all access to a portal (handlers/safeguarding.py asks
    first): one's own, or a held dependent's (`name`)."""
    label = (
        _("⛔ Stop all access to my portal")
        if name is None
        else _("⛔ Stop all access to {name}'s portal").format(name=name)
    )
    return [_button(label, AskToStopAll(patient_id).encode())]


# --- One grant ---------------------------------------------------------------------------------


def _grant_screen(_: Translator, found: ManagedGrant, me: int) -> Screen:
    """One active grant's actions: to switch to or leave, for its accessor; to change or
    revoke, for whoever decides for its subject."""
    grant, accessor, subject = found.grant, found.accessor, found.subject
    summary = labels.access_summary(_, grant.level, grant.role)
    back = [_button(_("◀ Back"), BackToAccess().encode())]
    if found.as_accessor:
        text = _("You access <b>{name}</b>'s portal: {access}.").format(
            name=esc(subject.full_name), access=summary
        )
        switch = _("🔄 Switch to {name}").format(name=subject.full_name)
        rows = [
            [_button(switch, SwitchTo(subject.id).encode())],
            *_ask_to_renew_row(_, found),
            [_button(_("Stop accessing"), AskToLeave(grant.id).encode())],
            back,
        ]
        return text, Keyboard(rows)
    other_level = Level.ADMINISTRATIVE if grant.level == Level.CLINICAL else Level.CLINICAL
    other_role = Role.VIEW if grant.role == Role.EDIT else Role.EDIT
    text = _("<b>{name}</b> accesses {whose}: {access}.").format(
        name=esc(accessor.full_name),
        whose=_("your portal") if subject.id == me else esc(subject.full_name),
        access=summary,
    )
    level = _("Make it {level}").format(level=labels.level(_, other_level))
    role = _("Make it {role}").format(role=labels.role(_, other_role))
    rows = [
        *_policy_rows(_, found, me),
        [_button(level, ChangeLevel(grant.id, other_level).encode())],
        [_button(role, ChangeRole(grant.id, other_role).encode())],
        [_button(_("Revoke access"), AskToRevoke(grant.id).encode())],
        back,
    ]
    return text, Keyboard(rows)


def _policy_rows(_: Translator, found: ManagedGrant, me: int) -> list[list[Button]]:
    """What the practice's notices send the patient here for (handlers/safeguarding.py
    answers them as on the notices): Renew someone's access that has an end date, or, before
    the adult birthday, Keep it. Only the patient whose portal it is may."""
    grant, accessor, subject = found.grant, found.accessor, found.subject
    if subject.id != me:
        return []
    name = accessor.full_name
    if grant.ends_at is not None and safeguarding.renewable(grant, subject):
        renew = _("Renew {name}'s access").format(name=name)
        return [[_button(renew, RenewAccess(grant.id).encode())]]
    if safeguarding.keepable(grant, subject):
        keep = _("Keep {name}'s access").format(name=name)
        return [[_button(keep, KeepAfterAdulthood(grant.id).encode())]]
    return []


def _ask_to_renew_row(_: Translator, found: ManagedGrant) -> list[list[Button]]:
    """The person with access asks the patient to renew it (only they can), as on the notice
    before its end date: while it has one and the patient has a login to renew it with."""
    grant, subject = found.grant, found.subject
    if grant.ends_at is None or not found.subject_has_login:
        return []
    if not safeguarding.renewable(grant, subject):
        return []
    ask = _("Ask {subject} to renew").format(subject=subject.full_name)
    return [[_button(ask, AskPatientToRenew(grant.id).encode())]]


def _revoke_question(_: Translator, found: ManagedGrant, me: int) -> Screen:
    """Yes or No before revoking: whose access, to which portal, how much."""
    grant, accessor, subject = found.grant, found.accessor, found.subject
    summary = labels.access_summary(_, grant.level, grant.role)
    if subject.id == me:
        text = _(
            "Revoke <b>{name}</b>'s access to your portal ({access})? It stops at once."
        ).format(name=esc(accessor.full_name), access=summary)
    else:
        text = _(
            "Revoke <b>{name}</b>'s access to <b>{whose}</b>'s portal ({access})? It stops at once."
        ).format(name=esc(accessor.full_name), whose=esc(subject.full_name), access=summary)
    return text, _yes_or_no(_, RevokeAccess(grant.id).encode(), grant.id)


def _leave_question(_: Translator, found: ManagedGrant) -> Screen:
    """Yes or No before leaving: which portal, how much."""
    grant = found.grant
    text = _(
        "Stop accessing <b>{name}</b>'s portal ({access})? You'll need a new approval to return."
    ).format(
        name=esc(found.subject.full_name),
        access=labels.access_summary(_, grant.level, grant.role),
    )
    return text, _yes_or_no(_, StopAccessing(grant.id).encode(), grant.id)


def _yes_or_no(_: Translator, yes: str, grant_id: int) -> Keyboard:
    """No goes back to the grant's actions."""
    no = OpenGrant(grant_id).encode()
    return Keyboard([[_button(_("Yes"), yes), _button(_("No"), no)]])


async def _managed(tap: Tap[K], context: PortalContext, grant_id: int) -> ManagedGrant | None:
    """The grant, for one of its two sides while it is active; otherwise None, once the
    tapper is shown the picture as it is now (bot.access audits a stranger's tap)."""
    found = await access.grant_for_manager(context.portal.db, tap.me.id, grant_id)
    if isinstance(found, Refusal):
        await _refresh(
            tap, context, context._("This access has changed; here is the current picture.")
        )
        return None
    await answer_quietly(tap.query)
    return found


async def open_grant(update: Update, context: PortalContext) -> None:
    """<name> ›, or No under a question: one grant's actions."""
    tap = await patient_tap(update, context, OpenGrant)
    if tap is None or (found := await _managed(tap, context, tap.data.grant)) is None:
        return
    await edit_in_place(tap.query, *_grant_screen(context._, found, tap.me.id))


async def ask_to_revoke(update: Update, context: PortalContext) -> None:
    """Revoke access: asks Yes or No first."""
    tap = await patient_tap(update, context, AskToRevoke)
    if tap is None or (found := await _managed(tap, context, tap.data.grant)) is None:
        return
    await edit_in_place(tap.query, *_revoke_question(context._, found, tap.me.id))


async def ask_to_leave(update: Update, context: PortalContext) -> None:
    """Stop accessing: asks Yes or No first."""
    tap = await patient_tap(update, context, AskToLeave)
    if tap is None or (found := await _managed(tap, context, tap.data.grant)) is None:
        return
    await edit_in_place(tap.query, *_leave_question(context._, found))


# --- Changes --------------------------------------------------------------------------------


async def _after_change(tap: Tap[K], context: PortalContext, result: ChangeResult) -> None:
    """Answer a change made (or refused) by bot.access, and show the picture as it is now."""
    _ = context._
    if result.outcome is ChangeOutcome.NOT_YOURS:
        await answer_quietly(tap.query, _("You can't change this access."), alert=True)
        return
    if result.outcome is ChangeOutcome.ALREADY:
        await _refresh(tap, context, _("This has already changed; here is the current picture."))
        return
    # Saved, with the other side's notice queued: a failed answer must not hide that.
    await answer_quietly(tap.query, _("Done."))
    await edit_in_place(tap.query, *await overview_screen(context, tap.me.id))


async def revoke_access(update: Update, context: PortalContext) -> None:
    """Yes under "Revoke …'s access?": it ends at once; the accessor is told."""
    tap = await patient_tap(update, context, RevokeAccess)
    if tap is not None:
        result = await access.revoke(context.portal.db, tap.me.id, tap.data.grant)
        await _after_change(tap, context, result)


async def stop_accessing(update: Update, context: PortalContext) -> None:
    """Yes under "Stop accessing …'s portal?": the decider is told."""
    tap = await patient_tap(update, context, StopAccessing)
    if tap is not None:
        result = await access.leave(context.portal.db, tap.me.id, tap.data.grant)
        await _after_change(tap, context, result)


async def withdraw_request(update: Update, context: PortalContext) -> None:
    """Withdraw request for <name>: while it is still pending."""
    tap = await patient_tap(update, context, WithdrawRequest)
    if tap is not None:
        result = await access.withdraw(context.portal.db, tap.me.id, tap.data.grant)
        await _after_change(tap, context, result)


async def change_level(update: Update, context: PortalContext) -> None:
    """Make it Clinical / Make it Administrative: the accessor is told."""
    tap = await patient_tap(update, context, ChangeLevel)
    if tap is not None:
        db, data = context.portal.db, tap.data
        result = await access.change_access(db, tap.me.id, data.grant, data.level, None)
        await _after_change(tap, context, result)


async def change_role(update: Update, context: PortalContext) -> None:
    """Make it View / Make it Edit: the accessor is told."""
    tap = await patient_tap(update, context, ChangeRole)
    if tap is not None:
        db, data = context.portal.db, tap.data
        result = await access.change_access(db, tap.me.id, data.grant, None, data.role)
        await _after_change(tap, context, result)


# --- Accounts one holds -----------------------------------------------------------------------


def _dependent_screen(_: Translator, dependent: Patient) -> Screen:
    name = dependent.full_name
    text = _("You hold <b>{name}</b>'s account: you decide who may see their records.").format(
        name=esc(name)
    )
    rows = [
        [
            _button(
                _("Give {name} their own login").format(name=name),
                GiveOwnLogin(dependent.id).encode(),
            )
        ],
        [
            _button(
                _("Share {name} with someone").format(name=name),
                ShareDependent(dependent.id).encode(),
            )
        ],
        [
            _button(
                _("📜 {name}'s access log").format(name=name), TurnLogPage(dependent.id, 0).encode()
            )
        ],
        stop_all_button(_, dependent.id, name),
        [_button(_("◀ Back"), BackToAccess().encode())],
    ]
    return text, Keyboard(rows)


async def open_dependent(update: Update, context: PortalContext) -> None:
    """<name>'s account ›: what the holder may do for a dependent."""
    tap = await patient_tap(update, context, OpenDependent)
    if tap is None:
        return
    dependent = await access.held_dependent(context.portal.db, tap.me.id, tap.data.patient)
    if dependent is None:
        await _refresh(tap, context, context._("You no longer hold this account."))
        return
    await answer_quietly(tap.query)
    await edit_in_place(tap.query, *_dependent_screen(context._, dependent))


async def give_own_login(update: Update, context: PortalContext) -> None:
    """Give <name> their own login: a one-time link (and its QR code) the holder passes on."""
    tap = await patient_tap(update, context, GiveOwnLogin)
    if tap is None:
        return
    _ = context._
    p = context.portal
    new = await invitations.create_own_login_invite(
        p.db, tap.me.id, tap.data.patient, p.settings.invite_ttl_days
    )
    if new is None:
        await answer_quietly(tap.query, _("You can't give this account a login."), alert=True)
        return
    await answer_quietly(tap.query)
    link = deep_link(context.bot.username, new.token)
    name = esc(new.patient.full_name)
    text = _(
        "Here is {name}'s own login link. It works once, until {date}, and asks for their date "
        "of birth. From then on {name} decides who may see their records; your access stays "
        "as it is until they change it."
    ).format(name=name, date=_.day_of(new.invite.expires_at, p.settings.tz))
    share = "https://t.me/share/url?url=" + quote(link, safe="")
    markup = Keyboard([[Button(_("Share the link"), url=share)]])
    await send_to_chat(update, text + "\n\n" + link, markup)
    assert update.effective_chat is not None
    await context.bot.send_photo(
        update.effective_chat.id,
        qr_png(link),
        caption=_("Or let {name} scan this code.").format(name=name),
    )
