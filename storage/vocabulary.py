"""The domain's words, at the bottom: storage models, the access rules and the wording all
use these types, so a grant's status or an audit action is never a loose string above here.

The values are what the database stores; renaming a member is free, changing a value is a
migration.
"""

from __future__ import annotations

import enum


class Relationship(enum.StrEnum):
    """What the person with access is to the patient, as they said when asking."""

    CHILD = "child"
    DAUGHTER = "daughter"
    SON = "son"
    PARENT = "parent"
    PARTNER = "partner"
    CARER = "carer"
    OTHER = "other"


class Level(enum.StrEnum):
    """How much of a portal a grant opens."""

    CLINICAL = "clinical"  # appointments, invoices and clinical records
    ADMINISTRATIVE = "administrative"  # appointments and invoices only


class Role(enum.StrEnum):
    """Whether a grant lets its holder act (confirm, cancel) or only look."""

    VIEW = "view"
    EDIT = "edit"


class GrantStatus(enum.StrEnum):
    PENDING = "pending"  # asked (or offered), not yet decided
    ACTIVE = "active"
    DENIED = "denied"
    EXPIRED = "expired"  # undecided until its deadline, or an offer made moot
    REVOKED = "revoked"  # ended after it began (or withdrawn before): see EndReason


class GrantKind(enum.StrEnum):
    REQUEST = "request"  # the person who wants access asked; the portal's owner decides
    OFFER = "offer"  # the holder of a dependent offered; the person offered decides


class EndReason(enum.StrEnum):
    """Why a grant whose status is REVOKED ended."""

    REVOKED = "revoked"  # the portal's owner (or holder) took it back
    LEFT = "left"  # the person with access gave it up
    WITHDRAWN = "withdrawn"  # the asker withdrew before a decision


class AppointmentStatus(enum.StrEnum):
    BOOKED = "booked"
    CONFIRMED = "confirmed"  # the patient (or someone acting for them) will attend
    CANCELLED = "cancelled"


class AppointmentAct(enum.StrEnum):
    """What a person may do to an upcoming appointment from the chat."""

    CANCEL = "cancel"
    CONFIRM = "confirm"


class Action(enum.StrEnum):
    """Every kind of event the access log can hold. Each has its words in
    handlers/activity.py (tests/test_activity.py checks every one, in every language)."""

    # Access between patients (bot/access.py)
    GRANT_REQUESTED = "grant.requested"
    GRANT_APPROVED = "grant.approved"
    GRANT_DENIED = "grant.denied"
    GRANT_REVOKED = "grant.revoked"
    GRANT_LEFT = "grant.left"
    GRANT_WITHDRAWN = "grant.withdrawn"
    GRANT_CHANGED = "grant.changed"
    GRANT_OFFERED = "grant.offered"
    GRANT_DECIDE = "grant.decide"  # refused only; the detail is an Attempt
    DEPENDENT_CREATED = "patient.dependent_created"
    # Looking and acting in a portal
    VIEW_APPOINTMENTS = "view.appointments"
    VIEW_INVOICES = "view.invoices"
    VIEW_RECORDS = "view.records"
    VIEW_DETAILS = "view.details"
    APPOINTMENT_CANCELLED = "appointment.cancelled"
    APPOINTMENT_CONFIRMED = "appointment.confirmed"
    APPOINTMENT_CANCEL_ASKED = "appointment.cancel_asked"
    SWITCH = "switch"
    SWITCH_FALLBACK = "switch.fallback"
    # Invites and signing in (bot/invitations.py)
    INVITE_CREATED = "invite.created"
    INVITE_OWN_LOGIN = "invite.own_login"
    INVITE_LOCKED = "invite.locked"
    INVITE_BURNED_IN_GROUP = "invite.burned_in_group"
    SIGNIN_OK = "signin.ok"
    SIGNIN_DOB_MISMATCH = "signin.dob_mismatch"
    SIGNED_OUT = "signin.signed_out"
    UNLINKED = "signin.unlinked"
    # The practice's records (bot/fhir.py)
    PATIENT_IMPORTED = "patient.imported"
    FHIR_IMPORTED = "fhir.imported"
    # The practice's policy (bot/sweep.py): done by the policy itself, no person; the detail
    # is the rule's name (bot/policy.py Rule). grant.*: the ref_id is the grant.
    POLICY_LIMITED = "grant.limited_by_policy"  # Clinical became Administrative
    POLICY_ENDED = "grant.ended_by_policy"
    POLICY_END_DATE = "grant.end_date_set"  # access that had none got an end date
    POLICY_OWN_LOGIN = "patient.own_login_offered"  # a practitioner was asked to invite
    POLICY_HOLDER_ENDED = "patient.holder_ended"  # the holder no longer decides for them
    # Answers to the policy (bot/safeguarding.py)
    GRANT_RENEWED = "grant.renewed"  # by the patient, or the practice (actor: none)
    GRANT_KEPT = "grant.kept"  # the young person keeps it past their adult age
    GRANT_CLINICAL_APPROVED = "grant.clinical_approved"  # by the young person
    GRANT_CONTINUED = "grant.continued"  # the young person, with their own login
    GRANT_SUSPENDED = "grant.suspended"  # by the practice (a practitioner or the CLI)


class Attempt(enum.StrEnum):
    """What a refused `grant.decide` event tried to do (its detail)."""

    UNKNOWN = "unknown"  # decide a request that does not exist
    NOT_DECIDER = "not_decider"  # decide someone else's request
    REVOKE = "revoke"
    CHANGE = "change"
    LEAVE = "leave"
    WITHDRAW = "withdraw"
    VIEW = "view"  # open one access's settings in /access
    OFFER = "offer"  # share a dependent they do not hold
    HOLD = "hold"  # manage a dependent they do not hold
    ACTIVITY = "activity"  # read an access log that is not theirs
    RENEW = "renew"  # renew access to a portal that is not theirs to renew
    KEEP = "keep"  # keep, or approve, access to a portal that is not theirs
    STOP_ALL = "stop_all"  # stop all access to a portal they do not decide for
    PRACTICE = "practice"  # list who has access, or suspend it, as if a practitioner
