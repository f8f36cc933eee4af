"""Words for the access model's values, in the reader's language."""

from __future__ import annotations

import datetime as dt
import html
from typing import assert_never

from bot import policy
from bot.i18n import Translator
from bot.policy import Rule
from storage.db import now
from storage.models import Grant, Patient
from storage.vocabulary import Level, Relationship, Role


def relationship(_: Translator, value: str, other: str | None = None) -> str:
    # One case per value, not a table of every translation: the table looked up all seven
    # for the one shown, on every line that names a relationship (issue #23).
    match Relationship(value):
        case Relationship.OTHER if other:
            return other
        case Relationship.CHILD:
            return _.pgettext("relationship", "Child")
        case Relationship.DAUGHTER:
            return _.pgettext("relationship", "Daughter")
        case Relationship.SON:
            return _.pgettext("relationship", "Son")
        case Relationship.PARENT:
            return _.pgettext("relationship", "Parent")
        case Relationship.PARTNER:
            return _.pgettext("relationship", "Partner")
        case Relationship.CARER:
            return _.pgettext("relationship", "Carer")
        case Relationship.OTHER:
            return _.pgettext("relationship", "Other")
        case unknown:
            assert_never(unknown)


def level(_: Translator, value: Level) -> str:
    return {
        Level.CLINICAL: _.pgettext("access level", "Clinical"),
        Level.ADMINISTRATIVE: _.pgettext("access level", "Administrative"),
    }[value]


def level_explained(_: Translator, value: Level) -> str:
    return {
        Level.CLINICAL: _("appointments, invoices and clinical records"),
        Level.ADMINISTRATIVE: _("appointments and invoices only, no clinical records"),
    }[value]


def role(_: Translator, value: Role) -> str:
    return {
        Role.VIEW: _.pgettext("access role", "View"),
        Role.EDIT: _.pgettext("access role", "Edit"),
    }[value]


def role_explained(_: Translator, value: Role) -> str:
    return {
        Role.VIEW: _("look only"),
        Role.EDIT: _("look and act, e.g. cancel an appointment"),
    }[value]


def grant_relationship(_: Translator, grant: Grant) -> str:
    return relationship(_, grant.relationship, grant.relationship_other)


def access_summary(_: Translator, level_value: Level, role_value: Role) -> str:
    """'Clinical, Edit' — the compact form used in lists and notices."""
    return _("{level}, {role}").format(level=level(_, level_value), role=role(_, role_value))


def level_bullet(_: Translator, value: Level) -> str:
    return f"• <b>{level(_, value)}</b>: {level_explained(_, value)}"


def role_bullet(_: Translator, value: Role) -> str:
    return f"• <b>{role(_, value)}</b>: {role_explained(_, value)}"


def patient_line(_: Translator, name: str, grant: Grant) -> str:
    """'Mia Lee (Child) · Clinical, Edit' with the name escaped for HTML."""
    rel = html.escape(grant_relationship(_, grant), quote=False)
    who = html.escape(name, quote=False)
    return f"{who} ({rel}) · {access_summary(_, grant.level, grant.role)}"


def until(
    _: Translator, grant: Grant, subject: Patient, tz: dt.tzinfo, *, own: bool = False
) -> str:
    """'until 3 Mar 2027 — Mia Lee turns 12': when the practice's policy next changes
    this access, and why (an end date, or a birthday); '' when nothing is scheduled. `own`:
    the reader is the patient whose portal it is."""
    change = policy.next_change(grant, subject, now())
    if change is None:
        return ""
    day = _.day_of(change.at, tz)
    if change.rule is Rule.TERM:
        return _("until {date}").format(date=day)
    age = policy.current().age_of(change.rule)
    if own:
        return _("until {date} — you turn {age}").format(date=day, age=age)
    name = html.escape(subject.full_name, quote=False)
    return _("until {date} — {name} turns {age}").format(date=day, name=name, age=age)
