"""/access: who you access, who accesses you (and your dependents), and what is pending —
one message, edited in place as you act. Every button is re-checked by bot.access."""

from __future__ import annotations

import datetime as dt
import logging
import re
from urllib.parse import quote

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.ext import CallbackQueryHandler, CommandHandler

from bot import access, invitations, labels
from bot.access import ChangeOutcome
from bot.context import PortalContext
from bot.i18n import Translator
from bot.qr import qr_png
from bot.text import esc
from bot.tokens import deep_link
from handlers.guard import require_patient
from handlers.menu import CB_HOME_ACCESS
from handlers.send import answer_quietly, edit_in_place, keyboard, send_long
from storage import Database
from storage.models import Grant, Patient
from storage.vocabulary import GrantStatus, Level, Role

log = logging.getLogger(__name__)

# ac:home · ac:g:<grant> (one grant's actions) · ac:lv:<grant>:<c|a> · ac:rl:<grant>:<v|e>
# ac:rv|rvy:<grant> revoke (ask, yes) · ac:lf|lfy:<grant> leave · ac:wd:<grant> withdraw
# ac:dep:<patient> a held dependent · ac:own:<patient> give them their own login
MAX_BUTTONS = 90
_DATA = re.compile(r"^ac:(home|g|lv|rl|rv|rvy|lf|lfy|wd|dep|own)(?::(\d{1,18}))?(?::([caev]))?$")


def _since(_: Translator, timestamp: int | None, tz: dt.tzinfo) -> str:
    if not timestamp:
        return ""
    return _("since {date}").format(date=_.day_of(timestamp, tz))


async def _render(
    context: PortalContext, _: Translator, me: int
) -> tuple[str, InlineKeyboardMarkup | None]:
    p = context.portal
    tz = p.settings.tz
    o = await access.overview(p.db, me)
    lines = [_("🔐 <b>Access</b>"), "", _("<b>Patients you access</b>")]
    rows: list[list[InlineKeyboardButton]] = []
    if not o.accessing:
        lines.append(_("Nobody yet. Send /addpatient to add someone."))
    for e in o.accessing:
        lines.append(
            "• "
            + labels.patient_line(_, e.other_name, e.grant)
            + " — "
            + _since(_, e.grant.decided_at, tz)
        )
        rows.append([InlineKeyboardButton(e.other_name + " ›", callback_data=f"ac:g:{e.grant.id}")])
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
            lines += [
                "",
                _("<b>People who access {name}</b>").format(name=esc(held_names[subject_id])),
            ]
        if not entries:
            lines.append(_("Nobody."))
        for e in entries:
            # The stored relationship says what the subject is to the accessor, so it
            # would read backwards here: show who and how much only.
            summary = labels.access_summary(_, e.grant.level, e.grant.role)
            lines.append(f"• {esc(e.other_name)} · {summary}")
            label = (
                _("{name} (accesses you) ›").format(name=e.other_name)
                if mine
                else _("{name} (accesses {whom}) ›").format(
                    name=e.other_name, whom=held_names[subject_id]
                )
            )
            rows.append([InlineKeyboardButton(label, callback_data=f"ac:g:{e.grant.id}")])
    if o.held:
        lines += ["", _("<b>Accounts you hold</b>")]
        for d in o.held:
            lines.append("• " + esc(d.full_name))
            label = _("{name}'s account ›").format(name=d.full_name)
            rows.append([InlineKeyboardButton(label, callback_data=f"ac:dep:{d.id}")])
    pending_lines, pending_rows = _pending(_, o)
    if pending_lines:
        lines += ["", _("<b>Pending</b>"), *pending_lines]
        rows += pending_rows
    if sum(len(r) for r in rows) > MAX_BUTTONS:  # Telegram refuses more than 100 per message
        while sum(len(r) for r in rows) > MAX_BUTTONS:
            rows.pop()
        lines += ["", _("Not everyone above has a button: there are too many for one message.")]
    return "\n".join(lines), keyboard(rows)


def _pending(
    _: Translator, o: access.Overview
) -> tuple[list[str], list[list[InlineKeyboardButton]]]:
    """Requests to decide, offers to answer and one's own requests to withdraw: a line and
    a row of buttons each."""
    kinds = (
        (
            o.incoming,
            _("{name} asks for access: {access}"),
            ((_("✅ Approve {name}"), "ap:ok:"), (_("❌ Deny"), "ap:no:")),
        ),
        (
            o.offers,
            _("You're offered access to {name}: {access}"),
            ((_("✅ Accept {name}"), "ap:ok:"), (_("❌ Decline"), "ap:no:")),
        ),
        (
            o.outgoing,
            _("Your request for {name} is waiting: {access}"),
            ((_("Withdraw request for {name}"), "ac:wd:"),),
        ),
    )
    lines: list[str] = []
    rows: list[list[InlineKeyboardButton]] = []
    for entries, line, buttons in kinds:
        for e in entries:
            summary = labels.access_summary(_, e.grant.level, e.grant.role)
            lines.append("• " + line.format(name=esc(e.other_name), access=summary))
            rows.append(
                [
                    InlineKeyboardButton(
                        label.format(name=e.other_name), callback_data=f"{prefix}{e.grant.id}"
                    )
                    for label, prefix in buttons
                ]
            )
    return lines, rows


def _grant_view(
    _: Translator, me: int, parties: tuple[Grant, Patient, Patient]
) -> tuple[str, InlineKeyboardMarkup] | None:
    """One active grant's actions, for its accessor or its subject's decider; None once
    it has ended."""
    grant, accessor, subject = parties
    grant_id = grant.id
    back = [InlineKeyboardButton(_("◀ Back"), callback_data="ac:home")]
    if grant.status is not GrantStatus.ACTIVE:
        return None
    summary = labels.access_summary(_, grant.level, grant.role)
    if grant.accessor_id == me:
        text = _("You access <b>{name}</b>'s portal: {access}.").format(
            name=esc(subject.full_name), access=summary
        )
        rows = [
            [
                InlineKeyboardButton(
                    _("🔄 Switch to {name}").format(name=subject.full_name),
                    callback_data=f"sw:{subject.id}",
                )
            ],
            [InlineKeyboardButton(_("Stop accessing"), callback_data=f"ac:lf:{grant_id}")],
            back,
        ]
        return text, InlineKeyboardMarkup(rows)
    other_level = Level.ADMINISTRATIVE if grant.level == Level.CLINICAL else Level.CLINICAL
    other_role = Role.VIEW if grant.role == Role.EDIT else Role.EDIT
    text = _("<b>{name}</b> accesses {whose}: {access}.").format(
        name=esc(accessor.full_name),
        whose=_("your portal") if subject.id == me else esc(subject.full_name),
        access=summary,
    )
    rows = [
        [
            InlineKeyboardButton(
                _("Make it {level}").format(level=labels.level(_, other_level)),
                callback_data=f"ac:lv:{grant_id}:{other_level.value[0]}",
            )
        ],
        [
            InlineKeyboardButton(
                _("Make it {role}").format(role=labels.role(_, other_role)),
                callback_data=f"ac:rl:{grant_id}:{other_role.value[0]}",
            )
        ],
        [InlineKeyboardButton(_("Revoke access"), callback_data=f"ac:rv:{grant_id}")],
        back,
    ]
    return text, InlineKeyboardMarkup(rows)


async def _edit(update: Update, text: str, markup: InlineKeyboardMarkup | None) -> None:
    assert update.callback_query is not None
    await edit_in_place(update.callback_query, text, markup)


async def show_access(update: Update, context: PortalContext) -> None:
    """/access: the whole picture in one message."""
    who = await require_patient(update, context)
    if who is None or who.patient is None:
        return
    if update.callback_query:
        await update.callback_query.answer()
    text, markup = await _render(context, who._, who.patient.id)
    assert update.effective_chat is not None
    await send_long(context.bot, update.effective_chat.id, text, markup)


async def manage(update: Update, context: PortalContext) -> None:
    """Any /access button: re-checks who may do it, acts, tells both sides, re-renders."""
    query = update.callback_query
    assert query is not None and query.data is not None
    who = context.caller
    _ = who._
    match = _DATA.match(query.data)
    if who.patient is None or match is None:
        await query.answer(_("This button is no longer active."), show_alert=True)
        return
    me = who.patient.id
    verb, ident, code = match[1], int(match[2] or 0), match[3]
    db = context.portal.db
    if verb == "home":
        await query.answer()
        await _edit(update, *await _render(context, _, me))
        return
    if verb in ("g", "rv", "lf"):
        await _one_grant(update, context, _, me, verb, ident)
        return
    if verb == "dep":
        dependent = await access.held_dependent(db, me, ident)
        if dependent is None:
            await query.answer(_("You no longer hold this account."), show_alert=True)
            await _edit(update, *await _render(context, _, me))
            return
        await query.answer()
        name = esc(dependent.full_name)
        text = _("You hold <b>{name}</b>'s account: you decide who may see their records.").format(
            name=name
        )
        markup = InlineKeyboardMarkup(
            [
                [
                    InlineKeyboardButton(
                        _("Give {name} their own login").format(name=dependent.full_name),
                        callback_data=f"ac:own:{ident}",
                    )
                ],
                [
                    InlineKeyboardButton(
                        _("Share {name} with someone").format(name=dependent.full_name),
                        callback_data=f"sh:start:{ident}",
                    )
                ],
                [
                    InlineKeyboardButton(
                        _("📜 {name}'s access log").format(name=dependent.full_name),
                        callback_data=f"log:{ident}:0",
                    )
                ],
                [InlineKeyboardButton(_("◀ Back"), callback_data="ac:home")],
            ]
        )
        await _edit(update, text, markup)
        return
    if verb == "own":
        await _give_own_login(update, context, me, ident)
        return
    if verb == "wd":
        result = await access.withdraw(db, me, ident)
    elif verb == "lfy":
        result = await access.leave(db, me, ident)
    elif verb == "rvy":
        result = await access.revoke(db, me, ident)
    else:
        level = (
            {"c": Level.CLINICAL, "a": Level.ADMINISTRATIVE}.get(code or "")
            if verb == "lv"
            else None
        )
        role = {"v": Role.VIEW, "e": Role.EDIT}.get(code or "") if verb == "rl" else None
        if level is None and role is None:
            await query.answer(_("This button is no longer active."), show_alert=True)
            return
        result = await access.change_access(db, me, ident, level, role)
    if result.outcome is ChangeOutcome.NOT_YOURS:
        await query.answer(_("You can't change this access."), show_alert=True)
        return
    if result.outcome is ChangeOutcome.ALREADY:
        await query.answer(
            _("This has already changed; here is the current picture."), show_alert=True
        )
        await _edit(update, *await _render(context, _, me))
        return
    # Saved, with the other side's notice queued: a failed answer must not hide that.
    await answer_quietly(query, _("Done."))
    await _edit(update, *await _render(context, _, me))


async def _one_grant(
    update: Update,
    context: PortalContext,
    _: Translator,
    me: int,
    verb: str,
    grant_id: int,
) -> None:
    """One grant's actions (g), or the question before revoking (rv) or leaving (lf) it:
    only for the grant's two sides. Anyone else's tap, or an id that names no grant, is
    refused (and audited by bot.access); so is a grant that has ended since."""
    query = update.callback_query
    assert query is not None
    parties = await access.grant_for_party(context.portal.db, me, grant_id)
    view = _grant_view(_, me, parties) if parties is not None else None
    if parties is None or view is None:
        await query.answer(
            _("This access has changed; here is the current picture."), show_alert=True
        )
        await _edit(update, *await _render(context, _, me))
        return
    await query.answer()
    if verb == "g":
        await _edit(update, *view)
        return
    confirm = "rvy" if verb == "rv" else "lfy"
    question = _confirmation(_, verb, me, *parties)
    markup = InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton(_("Yes"), callback_data=f"ac:{confirm}:{grant_id}"),
                InlineKeyboardButton(_("No"), callback_data=f"ac:g:{grant_id}"),
            ]
        ]
    )
    await _edit(update, question, markup)


def _confirmation(
    _: Translator, verb: str, me: int, grant: Grant, accessor: Patient, subject: Patient
) -> str:
    """The question before revoking (rv) or leaving (lf): whose access, to which portal,
    how much."""
    summary = labels.access_summary(_, grant.level, grant.role)
    if verb == "lf":
        return _(
            "Stop accessing <b>{name}</b>'s portal ({access})? You'll need a new approval "
            "to return."
        ).format(name=esc(subject.full_name), access=summary)
    if subject.id == me:
        return _(
            "Revoke <b>{name}</b>'s access to your portal ({access})? It stops at once."
        ).format(name=esc(accessor.full_name), access=summary)
    return _(
        "Revoke <b>{name}</b>'s access to <b>{whose}</b>'s portal ({access})? It stops at once."
    ).format(name=esc(accessor.full_name), whose=esc(subject.full_name), access=summary)


async def _decider(db: Database, subject_id: int) -> int | None:
    async with db.read() as conn:
        return await access.decider_for(conn, subject_id)


async def _give_own_login(
    update: Update, context: PortalContext, me: int, dependent_id: int
) -> None:
    query = update.callback_query
    assert query is not None
    _ = (context.caller)._
    p = context.portal
    new = await invitations.create_own_login_invite(
        p.db, me, dependent_id, p.settings.invite_ttl_days
    )
    if new is None:
        await query.answer(_("You can't give this account a login."), show_alert=True)
        return
    await query.answer()
    link = deep_link(context.bot.username, new.token)
    name = esc(new.patient.full_name)
    text = (
        _(
            "Here is {name}'s own login link. It works once, until {date}, and asks for their date "
            "of birth. From then on {name} decides who may see their records; your access stays "
            "as it is until they change it."
        ).format(name=name, date=_.day_of(new.invite.expires_at, p.settings.tz))
        + "\n\n"
        + link
    )
    share = "https://t.me/share/url?url=" + quote(link, safe="")
    assert update.effective_chat is not None
    await context.bot.send_message(
        update.effective_chat.id,
        text,
        reply_markup=InlineKeyboardMarkup([[InlineKeyboardButton(_("Share the link"), url=share)]]),
    )
    await context.bot.send_photo(
        update.effective_chat.id,
        qr_png(link),
        caption=_("Or let {name} scan this code.").format(name=name),
    )


def manage_handlers() -> list[object]:
    return [
        CommandHandler("access", show_access),
        CallbackQueryHandler(show_access, pattern=f"^{CB_HOME_ACCESS}$"),
        CallbackQueryHandler(manage, pattern=r"^ac:"),
    ]
