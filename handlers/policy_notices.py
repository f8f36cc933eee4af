"""The words of the practice's policy notices (issue #20), one renderer per outbox Kind,
registered in handlers/notices.py. Made when sent, in the recipient's language, from the
state then: a notice about a change that no longer comes (renewed, kept, approved, ended
meanwhile) is not sent at all. Each says what will change (or did) and what they can do.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from bot import access, labels, policy
from bot.callbacks import (
    ApproveClinical,
    AskPatientToRenew,
    ContinueAccess,
    EndAccessAsYoung,
    EndForPatient,
    KeepAdministrative,
    KeepAfterAdulthood,
    RenewAccess,
    RenewForPatient,
)
from bot.context import Portal
from bot.i18n import Translator, translator
from bot.keyboards import Button, Keyboard
from bot.outbox import UNREACHABLE, Outgoing, Unreachable
from bot.policy import Change, Rule
from bot.text import esc
from storage import logins, patients
from storage.models import Grant, Patient
from storage.outbox import Kind, Message
from storage.vocabulary import GrantStatus

Rendered = Outgoing | Unreachable | None
Parties = tuple[Grant, Patient, Patient]  # the grant, its accessor, its subject
Buttons = Callable[[Translator, Parties, Message, bool], Keyboard | None]


def _row(*buttons: tuple[str, str]) -> Keyboard:
    """One row of buttons: (label, callback data) each."""
    return Keyboard([[Button(label, data=data) for label, data in buttons]])


async def _to_patient(p: Portal, patient_id: int | None) -> tuple[int, Translator] | None:
    if patient_id is None:
        return None
    async with p.db.read() as conn:
        login = await logins.for_patient(conn, patient_id)
    if login is None:
        return None
    return login.telegram_user_id, translator(login.locale, p.settings.default_locale)


async def _to_chat(p: Portal, chat_id: int) -> Translator:
    async with p.db.read() as conn:
        login = await logins.get(conn, chat_id)
    return translator(login.locale if login else None, p.settings.default_locale)


def _about_grant(
    words: Callable[[Portal, Translator, Parties, Message, bool], str | None],
    buttons: Buttons | None = None,
) -> Callable[[Portal, Message], Awaitable[Rendered]]:
    """A notice to a patient about a grant: its words (which may depend on whether the
    patient whose portal it is has a login of their own) and what they can do about it,
    or None when there is nothing to say any more."""

    async def render(p: Portal, row: Message) -> Rendered:
        parties = await access.grant_parties(p.db, row.ref_id or 0)
        if parties is None:
            return None
        to = await _to_patient(p, row.patient_id)
        if to is None:
            return UNREACHABLE
        chat_id, _ = to
        async with p.db.read() as conn:
            has_login = await logins.for_patient(conn, parties[2].id) is not None
        text = words(p, _, parties, row, has_login)
        if text is None:
            return None
        markup = buttons(_, parties, row, has_login) if buttons else None
        return Outgoing(chat_id, text, markup)

    render.__doc__ = words.__doc__
    return render


def _side(row: Message) -> str:
    return str(row.detail.get("as", "accessor"))


def _age(rule: Rule) -> int:
    return policy.current().age_of(rule)


def _ahead(p: Portal, _: Translator, parties: Parties, row: Message, has_login: bool) -> str | None:
    """Both sides, ahead of a change: what will change, when, and what they can do."""
    grant, accessor, subject = parties
    try:
        change = Change(int(row.detail["at"]), Rule(row.detail["rule"]))
    except (KeyError, ValueError):
        return None
    if grant.status is not GrantStatus.ACTIVE or change not in policy.changes(
        grant, subject, policy.current()
    ):
        return None  # renewed, kept, approved or ended since: it no longer comes
    when = _.day_of(change.at, p.settings.tz)
    names = {"name": esc(accessor.full_name), "subject": esc(subject.full_name)}
    age = _age(change.rule)
    side = _side(row)
    if change.rule is Rule.TEEN:
        if side == "subject":
            return _(
                "On {date} you turn {age}. From then on {name} sees only your appointments "
                "and invoices, not your clinical records, unless you approve it."
            ).format(date=when, age=age, **names)
        if side == "holder":
            return _(
                "On {date} {subject} turns {age}. From then on {name}'s access to their "
                "portal is Administrative (appointments and invoices); their clinical records "
                "need {subject}'s approval, once they have their own login."
            ).format(date=when, age=age, **names)
        return _(
            "On {date} {subject} turns {age}. From then on your access to their portal is "
            "Administrative (appointments and invoices); their clinical records need "
            "{subject}'s approval, once they have their own login."
        ).format(date=when, age=age, **names)
    if change.rule is Rule.ADULT:
        if side == "subject":
            return _(
                "On {date} you turn {age}, and {name}'s access to your portal ends. To keep "
                "it, open /access before then; otherwise you need do nothing."
            ).format(date=when, age=age, **names)
        if side == "holder":
            return _(
                "On {date} {subject} turns {age}, and {name}'s access to their portal ends, "
                "unless {subject} chooses to keep it."
            ).format(date=when, age=age, **names)
        return _(
            "On {date} {subject} turns {age}, and your access to their portal ends, unless "
            "{subject} chooses to keep it (they need their own login for that)."
        ).format(date=when, age=age, **names)
    if side == "subject":
        return _(
            "{name}'s access to your portal ends on {date}. To keep it, renew it in /access "
            "before then; to let it end, do nothing."
        ).format(date=when, **names)
    if not has_login:  # an adult someone looks after: the practice decides
        if side == "holder":
            return _(
                "{name}'s access to the portal of {subject} ends on {date}. {subject} has no "
                "login of their own, so the practice has been asked whether to renew it."
            ).format(date=when, **names)
        return _(
            "Your access to {subject}'s portal ends on {date}. {subject} has no login of "
            "their own, so the practice has been asked whether to renew it."
        ).format(date=when, **names)
    return _(
        "Your access to {subject}'s portal ends on {date}. Only {subject} can renew it: if "
        "you still need it, ask them to."
    ).format(date=when, **names)


def _ahead_buttons(
    _: Translator, parties: Parties, row: Message, has_login: bool
) -> Keyboard | None:
    """The young person keeps access past their adult birthday; the patient renews; the
    person with access asks them to."""
    grant, accessor, subject = parties
    rule, side = row.detail.get("rule"), _side(row)
    if side == "subject" and rule == Rule.ADULT:
        keep = _("Keep {name}'s access").format(name=accessor.full_name)
        return _row((keep, KeepAfterAdulthood(grant.id).encode()))
    if side == "subject" and rule == Rule.TERM:
        return _renew_button(_, parties, row, has_login)
    if side == "accessor" and rule == Rule.TERM and has_login:
        ask = _("Ask {subject} to renew").format(subject=subject.full_name)
        return _row((ask, AskPatientToRenew(grant.id).encode()))
    return None


def _renew_button(
    _: Translator, parties: Parties, row: Message, has_login: bool
) -> Keyboard | None:
    """The patient whose portal it is: Renew."""
    grant, accessor, _subject = parties
    if _side(row) != "subject" or not has_login:
        return None
    renew = _("Renew {name}'s access").format(name=accessor.full_name)
    return _row((renew, RenewAccess(grant.id).encode()))


def _renew_button_to_subject(
    _: Translator, parties: Parties, row: Message, has_login: bool
) -> Keyboard | None:
    """Renew, on the request the person with access sent (it goes to the patient only)."""
    renew = _("Renew {name}'s access").format(name=parties[1].full_name)
    return _row((renew, RenewAccess(parties[0].id).encode()))


def _done(p: Portal, _: Translator, parties: Parties, row: Message, has_login: bool) -> str | None:
    """Both sides, when the change came (as it happened, whatever has happened since)."""
    _grant, accessor, subject = parties
    try:
        rule = Rule(row.detail["rule"])
    except (KeyError, ValueError):
        return None
    names = {"name": esc(accessor.full_name), "subject": esc(subject.full_name)}
    age = _age(rule)
    side = _side(row)
    if rule is Rule.TEEN:
        if side == "subject":
            return _(
                "You turned {age}: {name} now sees only your appointments and invoices, not "
                "your clinical records."
            ).format(age=age, **names)
        if side == "holder":
            return _(
                "{subject} turned {age}: {name}'s access to their portal is now "
                "Administrative (appointments and invoices)."
            ).format(age=age, **names)
        return _(
            "{subject} turned {age}: your access to their portal is now Administrative "
            "(appointments and invoices). Their clinical records need {subject}'s approval."
        ).format(age=age, **names)
    if rule is Rule.ADULT:
        if side == "subject":
            return _("You turned {age}: {name}'s access to your portal has ended.").format(
                age=age, **names
            )
        if side == "holder":
            return _("{subject} turned {age}: {name}'s access to their portal has ended.").format(
                age=age, **names
            )
        return _("{subject} turned {age}: your access to their portal has ended.").format(
            age=age, **names
        )
    if side == "accessor":
        return _("Your access to {subject}'s portal reached its end date and has ended.").format(
            **names
        )
    return _(
        "{name}'s access to the portal of {subject} reached its end date and has ended."
    ).format(**names)


def _end_date_set(
    p: Portal, _: Translator, parties: Parties, row: Message, has_login: bool
) -> str | None:
    """Both sides of access that existed before the term: it now has an end date."""
    grant, accessor, subject = parties
    if grant.status is not GrantStatus.ACTIVE or grant.ends_at is None:
        return None
    if grant.ends_at != row.detail.get("at"):
        return None  # renewed since: that said when
    names = {"name": esc(accessor.full_name), "subject": esc(subject.full_name)}
    when = _.day_of(grant.ends_at, p.settings.tz)
    if _side(row) == "accessor":
        if not has_login:
            return _(
                "Under the practice's policy, access to another patient's portal now has an "
                "end date: your access to {subject}'s portal ends on {date}. {subject} has no "
                "login of their own, so the practice will decide whether to renew it; you "
                "will be reminded before then."
            ).format(date=when, **names)
        return _(
            "Under the practice's policy, access to another patient's portal now has an end "
            "date: your access to {subject}'s portal ends on {date}. Only {subject} can renew "
            "it, and you will both be reminded before then."
        ).format(date=when, **names)
    if _side(row) == "holder":
        return _(
            "Under the practice's policy, access to a portal now has an end date: {name}'s "
            "access to the portal of {subject} ends on {date}. {subject} has no login of their "
            "own, so the practice will decide whether to renew it."
        ).format(date=when, **names)
    return _(
        "Under the practice's policy, access to a portal now has an end date: {name}'s "
        "access to the portal of {subject} ends on {date}. It can be renewed in /access, and "
        "you will be reminded before then."
    ).format(date=when, **names)


def _renewed(
    p: Portal, _: Translator, parties: Parties, row: Message, has_login: bool
) -> str | None:
    """The person with access: renewed, or kept past the young person's adult age."""
    grant, _accessor, subject = parties
    if grant.status is not GrantStatus.ACTIVE:
        return None
    at = row.detail.get("at")
    if row.detail.get("why") == "kept":
        text = _("{subject} chose to keep your access to their portal after they turn {age}.")
        text = text.format(subject=esc(subject.full_name), age=_age(Rule.ADULT))
        if isinstance(at, int):
            text += " " + _("It now ends on {date}.").format(date=_.day_of(at, p.settings.tz))
        return text
    if not isinstance(at, int):
        return None
    return _("Your access to {subject}'s portal was renewed: it now ends on {date}.").format(
        subject=esc(subject.full_name), date=_.day_of(at, p.settings.tz)
    )


def _young_review(
    p: Portal, _: Translator, parties: Parties, row: Message, has_login: bool
) -> str | None:
    """The young person, with their own login: approve someone's access."""
    grant, accessor, subject = parties
    if grant.status is not GrantStatus.ACTIVE or access.in_force(grant, subject) is None:
        return None
    name = esc(accessor.full_name)
    if row.detail.get("what") == "clinical":
        if grant.clinical_ok_at is not None:
            return None
        return _(
            "Since you turned {age}, {name} no longer sees your clinical records. They can "
            "again only if you approve it in /access."
        ).format(age=_age(Rule.TEEN), name=name)
    if grant.continued_at is not None:
        return None
    summary = labels.access_summary(_, grant.level, grant.role)
    return _(
        "{name} has access to your portal ({access}) from before you had your own login. "
        "Now you decide whether it continues: you can end it in /access; until you do, it "
        "stays as it is."
    ).format(name=name, access=summary)


def _review_buttons(
    _: Translator, parties: Parties, row: Message, has_login: bool
) -> Keyboard | None:
    """Approve / Deny: Clinical again or it stays Administrative; continues or ends."""
    grant_id = parties[0].id
    if row.detail.get("what") == "clinical":
        return _row(
            (_("✅ Approve"), ApproveClinical(grant_id).encode()),
            (_("❌ Deny"), KeepAdministrative(grant_id).encode()),
        )
    return _row(
        (_("✅ Approve"), ContinueAccess(grant_id).encode()),
        (_("❌ Deny"), EndAccessAsYoung(grant_id).encode()),
    )


def _renewal_requested(
    p: Portal, _: Translator, parties: Parties, row: Message, has_login: bool
) -> str | None:
    """The patient: the person with access asks them to renew it."""
    grant, accessor, _subject = parties
    if (
        grant.status is not GrantStatus.ACTIVE
        or grant.ends_at is None
        or grant.ends_at != row.detail.get("at")
    ):
        return None  # renewed or ended since
    return _(
        "{name} asks you to renew their access to your portal, which ends on {date}. To "
        "let it end, do nothing."
    ).format(name=esc(accessor.full_name), date=_.day_of(grant.ends_at, p.settings.tz))


def _ended_quietly(
    p: Portal, _: Translator, parties: Parties, row: Message, has_login: bool
) -> str | None:
    """Both sides of access the practice suspended, or that "stop all access" ended: only
    that it ended, never by whom or why (DAPB3051)."""
    _grant, accessor, subject = parties
    if _side(row) == "accessor":
        return _("Your access to {subject}'s portal has ended.").format(
            subject=esc(subject.full_name)
        )
    return _("{name}'s access to the portal of {subject} has ended.").format(
        name=esc(accessor.full_name), subject=esc(subject.full_name)
    )


async def renewal_asked(p: Portal, row: Message) -> Rendered:
    """A practitioner: access to a patient without a login ends soon; renew or let it end."""
    parties = await access.grant_parties(p.db, row.ref_id or 0)
    if parties is None or row.chat_id is None:
        return None
    grant, accessor, subject = parties
    async with p.db.read() as conn:
        has_login = await logins.for_patient(conn, subject.id) is not None
    if (
        grant.status is not GrantStatus.ACTIVE
        or grant.ends_at is None
        or grant.ends_at != row.detail.get("at")
        or has_login
    ):
        return None
    _ = await _to_chat(p, row.chat_id)
    return Outgoing(
        row.chat_id,
        _(
            "{name}'s access to the portal of {subject} ends on {date}. {subject} has no "
            "login of their own, so the practice decides whether to renew it."
        ).format(
            name=esc(accessor.full_name),
            subject=esc(subject.full_name),
            date=_.day_of(grant.ends_at, p.settings.tz),
        ),
        _row(
            (_("Renew"), RenewForPatient(grant.id).encode()),
            (_("End access"), EndForPatient(grant.id).encode()),
        ),
    )


async def invite_asked(p: Portal, row: Message) -> Rendered:
    """A practitioner: a young person needs an invite to their own login."""
    if row.chat_id is None:
        return None
    async with p.db.read() as conn:
        subject = await patients.get(conn, row.ref_id or 0)
        has_login = subject is not None and await logins.for_patient(conn, subject.id) is not None
    if subject is None or has_login or subject.date_of_birth is None:
        return None
    _ = await _to_chat(p, row.chat_id)
    words = {
        "name": esc(subject.full_name),
        "born": _.date(subject.date_of_birth),
    }
    if row.detail.get("rule") == Rule.ADULT:
        text = _(
            "{name} (born {born}) has turned {age}: the person who managed their account no "
            "longer does, and they have no login of their own. Please send them an invite "
            "with /invite."
        ).format(age=_age(Rule.ADULT), **words)
    else:
        text = _(
            "{name} (born {born}) has turned {age} and can now have their own login to the "
            "portal. Please send them an invite with /invite."
        ).format(age=_age(Rule.OWN_LOGIN), **words)
    return Outgoing(row.chat_id, text)


async def holder_told(p: Portal, row: Message) -> Rendered:
    """The holder: the young person is offered their own login, or has come of age."""
    async with p.db.read() as conn:
        subject = await patients.get(conn, row.ref_id or 0)
    if subject is None:
        return None
    to = await _to_patient(p, row.patient_id)
    if to is None:
        return UNREACHABLE
    chat_id, _ = to
    name = esc(subject.full_name)
    asked = bool(row.detail.get("asked"))
    if row.detail.get("rule") == Rule.ADULT:
        text = _("{name} has turned {age}: you no longer manage their account.").format(
            name=name, age=_age(Rule.ADULT)
        )
        if asked:
            text += " " + _("The practice has been asked to invite them to their own login.")
        return Outgoing(chat_id, text)
    text = _("{name} has turned {age} and can now have their own login.").format(
        name=name, age=_age(Rule.OWN_LOGIN)
    )
    if asked:
        text += " " + _("The practice has been asked to send them an invite.")
    text += " " + _("Once they sign in, {name} decides who sees their portal.").format(name=name)
    return Outgoing(chat_id, text)


RENDERERS: dict[Kind, Callable[[Portal, Message], Awaitable[Rendered]]] = {
    Kind.POLICY_AHEAD: _about_grant(_ahead, _ahead_buttons),
    Kind.POLICY_DONE: _about_grant(_done),
    Kind.END_DATE_SET: _about_grant(_end_date_set, _renew_button),
    Kind.RENEWED: _about_grant(_renewed),
    Kind.YOUNG_REVIEW: _about_grant(_young_review, _review_buttons),
    Kind.RENEWAL_REQUESTED: _about_grant(_renewal_requested, _renew_button_to_subject),
    Kind.ACCESS_ENDED_QUIETLY: _about_grant(_ended_quietly),
    Kind.RENEWAL_ASKED: renewal_asked,
    Kind.INVITE_ASKED: invite_asked,
    Kind.HOLDER_TOLD: holder_told,
}
