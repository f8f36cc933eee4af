"""Rows as pydantic models: what repositories hand to the rest of the bot."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, ConfigDict

from storage.vocabulary import (
    AppointmentStatus,
    EndReason,
    GrantKind,
    GrantStatus,
    Level,
    Relationship,
    Role,
)


class Row(BaseModel):
    model_config = ConfigDict(frozen=True)


class Patient(Row):
    id: int
    full_name: str
    date_of_birth: dt.date | None
    email: str | None
    created_at: int
    holder_id: int | None = None


class Login(Row):
    telegram_user_id: int
    patient_id: int
    locale: str | None
    created_at: int
    current_subject_id: int | None = None


class Identity(Row):
    """Who a Telegram user is to the portal right now."""

    login: Login | None
    patient: Patient | None
    is_practitioner: bool
    # The outbox holds messages for this chat (they had blocked the bot): read here, with
    # the rest, so that an update costs one read before its handlers (handlers/notices.py).
    has_held: bool = False


class Practitioner(Row):
    telegram_user_id: int
    name: str
    created_at: int


class Invite(Row):
    id: int
    patient_id: int
    invited_by: int | None
    created_at: int
    expires_at: int
    used_at: int | None
    used_by: int | None
    failed_dob_tries: int
    locked_at: int | None
    created_by_patient: int | None = None
    burned_at: int | None = None  # posted in a group chat: unusable
    date_of_birth: dt.date | None = None  # checked when the patient has none on record


class AuditEvent(Row):
    id: int
    at: int
    actor_patient_id: int | None
    actor_telegram_id: int | None
    subject_patient_id: int | None
    action: str
    outcome: str
    ref_id: int | None
    detail: str | None


class LogEntry(Row):
    """An event as the access log shows it, with the names it needs."""

    event: AuditEvent
    actor_name: str | None  # the acting patient; None for staff, strangers and the bot
    # For an event about one of the subject's grants: whom it lets in.
    accessor_id: int | None = None
    accessor_name: str | None = None


class Grant(Row):
    id: int
    accessor_id: int
    subject_id: int | None
    subject_email: str | None
    subject_name: str | None
    relationship: Relationship
    relationship_other: str | None
    level: Level
    role: Role
    status: GrantStatus
    requested_at: int
    expires_at: int | None
    decided_at: int | None
    decided_by: int | None
    notified_at: int | None
    kind: GrantKind = GrantKind.REQUEST
    end_reason: EndReason | None = None  # when status is REVOKED
    # The practice's policy (bot/policy.py): when the access began, its end date (access
    # between adults), and what the young person decided about it.
    began_at: int | None = None
    ends_at: int | None = None
    kept_at: int | None = None
    clinical_ok_at: int | None = None
    continued_at: int | None = None


class AccessEntry(Row):
    """A grant with the other patient's name, for lists."""

    grant: Grant
    other_name: str


class LoginView(Row):
    """A login, its own patient, the patient whose portal is asked for, and the active
    grant between the two (None when there is none, or when the subject is the login's own)."""

    login: Login
    me: Patient
    subject: Patient | None
    grant: Grant | None


class Appointment(Row):
    id: int
    patient_id: int
    fhir_id: str | None
    starts_at: int
    ends_at: int
    practitioner: str | None
    location: str | None
    status: AppointmentStatus
    updated_at: int


class Invoice(Row):
    id: int
    patient_id: int
    fhir_id: str | None
    number: str
    issued_on: dt.date
    amount_minor: int  # in the currency's smallest unit, e.g. cents
    currency: str  # ISO 4217
    paid: bool


class ClinicalRecord(Row):
    id: int
    patient_id: int
    fhir_id: str | None
    recorded_on: dt.date | None  # None when the source gives no full date
    kind: str  # condition | immunisation | result | allergy | note
    title: str
    details: str  # short; "" when there is nothing to add
    measurement: str | None = None  # an observation's values, JSON: see bot/measures.py
