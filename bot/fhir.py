"""Import a FHIR R4 Bundle from the practice's system: patients, appointments, invoices and
clinical records. All of a file or none of it.

Two steps. `parse_bundle` validates every entry with fhir.resources and turns it into plain
rows without touching the database, so most mistakes are found before anything is opened.
`import_bundle` then writes those rows in one transaction, resolving patient references
against the bundle and the patients already stored. Either step stops at the first bad
entry with a FhirImportError naming it ("entry 3 (Observation/obs-2): ...").

Rows are keyed by the resource they came from ("Observation/obs-2"), so importing the same
bundle again updates them instead of adding copies. A resource the source has withdrawn
(entered in error, a cancelled invoice) is not imported, and an earlier copy is removed.

fhir.resources has no R4 models that run on pydantic 2: its R4 releases (6.x) need pydantic
1, and the pydantic-2 releases (8.x) carry R5, R4B and STU3. R4B changed only the medication
definition, evidence and subscription resources, so R4 content of the types read here
validates unchanged against the R4B models.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path

from babel.numbers import get_currency_precision, is_currency
from fhir.resources.R4B import get_fhir_model_class
from fhir.resources.R4B.allergyintolerance import AllergyIntolerance
from fhir.resources.R4B.appointment import Appointment
from fhir.resources.R4B.bundle import Bundle, BundleEntry
from fhir.resources.R4B.codeableconcept import CodeableConcept
from fhir.resources.R4B.condition import Condition
from fhir.resources.R4B.humanname import HumanName
from fhir.resources.R4B.immunization import Immunization
from fhir.resources.R4B.invoice import Invoice
from fhir.resources.R4B.location import Location
from fhir.resources.R4B.observation import Observation
from fhir.resources.R4B.patient import Patient
from fhir.resources.R4B.practitioner import Practitioner
from fhir.resources.R4B.reference import Reference
from fhir.resources.R4B.resource import Resource
from pydantic import ValidationError

from bot.text import clean_email, clean_name
from storage import Database, audit, grants, patients, portal
from storage.audit import Action
from storage.db import Writes

TITLE_MAX = 200
DETAILS_MAX = 200

_APPOINTMENT_STATUS = {
    "proposed": "booked",
    "pending": "booked",
    "booked": "booked",
    "arrived": "confirmed",
    "checked-in": "confirmed",
    "fulfilled": "confirmed",
    "cancelled": "cancelled",
    "noshow": "cancelled",
}
# Appointments FHIR allows without a time (invariant app-3); the portal cannot list them.
_UNTIMED_OK = {"proposed", "cancelled"}
_RECORD_KINDS = {
    "Condition": "condition",
    "Immunization": "immunisation",
    "Observation": "result",
    "AllergyIntolerance": "allergy",
}
_SUPPORTED = {"Patient", "Appointment", "Invoice", *_RECORD_KINDS}
# "Patient/p1", or the same at the end of an absolute URL, optionally with a version.
_LITERAL_REF = re.compile(r"(?:^|/)([A-Z][A-Za-z]+)/([A-Za-z0-9.-]{1,64})(?:/_history/[^/]+)?$")


class FhirImportError(Exception):
    """One line for the operator; names the entry when one is at fault."""

    def __init__(self, message: str, index: int | None = None, label: str | None = None):
        where = "" if index is None else f"entry {index}" + (f" ({label})" if label else "")
        super().__init__(f"{where}: {message}" if where else message)


# --- What a bundle holds, as rows ------------------------------------------------------


@dataclass(frozen=True)
class PatientRow:
    index: int
    fhir_id: str
    full_name: str
    date_of_birth: dt.date | None
    email: str | None


@dataclass(frozen=True)
class AppointmentRow:
    index: int
    fhir_id: str
    patient_ref: str
    starts_at: int
    ends_at: int
    practitioner: str | None
    location: str | None
    status: str


@dataclass(frozen=True)
class InvoiceRow:
    index: int
    fhir_id: str
    patient_ref: str
    number: str
    issued_on: dt.date
    amount_minor: int
    currency: str
    paid: bool


@dataclass(frozen=True)
class RecordRow:
    index: int
    fhir_id: str
    patient_ref: str
    recorded_on: dt.date
    kind: str
    title: str
    details: str


Row = AppointmentRow | InvoiceRow | RecordRow


@dataclass
class Plan:
    patients: list[PatientRow] = field(default_factory=list)
    rows: list[Row] = field(default_factory=list)
    withdrawn: list[str] = field(default_factory=list)  # fhir_ids to remove if stored
    skipped: Counter[str] = field(default_factory=Counter)


@dataclass(frozen=True)
class ImportSummary:
    patients: int
    appointments: int
    invoices: int
    records: int
    removed: int
    skipped: tuple[tuple[str, int], ...]

    def line(self) -> str:
        counts = ", ".join(
            _count(n, what)
            for n, what in (
                (self.patients, "patient"),
                (self.appointments, "appointment"),
                (self.invoices, "invoice"),
                (self.records, "clinical record"),
            )
        )
        text = f"imported {counts}"
        if self.removed:
            text += f"; removed {self.removed} withdrawn at the source"
        if self.skipped:
            total = sum(n for _, n in self.skipped)
            kinds = ", ".join(what if n == 1 else f"{what} ×{n}" for what, n in self.skipped)
            text += f"; skipped {total} ({kinds})"
        return text


def _count(n: int, what: str) -> str:
    return f"{n} {what}" + ("" if n == 1 else "s")


# --- Parsing and validation ------------------------------------------------------------


@dataclass(frozen=True)
class _Entry:
    index: int
    label: str  # "Type/id": also the fhir_id stored for it
    resource: Resource


def load_bundle(path: Path) -> object:
    """The file's JSON, with decimals kept exact: FHIR decimals carry their precision
    ("38.20 kg"), and a float would turn 0.10 AUD into 0.1000000000000000055."""
    try:
        text = path.read_text(encoding="utf-8-sig")  # OSError is the caller's to report
    except UnicodeDecodeError:
        raise FhirImportError(f"{path}: not UTF-8 text") from None
    try:
        return json.loads(text, parse_float=Decimal)
    except json.JSONDecodeError as exc:
        raise FhirImportError(f"{path} line {exc.lineno}: not valid JSON ({exc.msg})") from None


def parse_bundle(data: object, tz: dt.tzinfo) -> Plan:
    """Validate the whole bundle and map it to rows; touches no database.
    `tz` is the practice's: a record timed 23:30 there belongs to that day."""
    if not isinstance(data, Mapping) or data.get("resourceType") != "Bundle":
        found = data.get("resourceType") if isinstance(data, Mapping) else type(data).__name__
        raise FhirImportError(f"not a FHIR Bundle (resourceType is {found!r})")
    raw_entries = data.get("entry", [])
    if not isinstance(raw_entries, list):
        raise FhirImportError("bundle: entry must be a list")
    try:
        Bundle.model_validate({k: v for k, v in data.items() if k != "entry"})
    except ValidationError as exc:
        raise FhirImportError(f"bundle: {_describe(exc)}") from None

    entries: list[_Entry] = []
    by_url: dict[str, str] = {}
    seen: dict[str, int] = {}
    for index, raw in enumerate(raw_entries):
        entry, full_url = _validate_entry(index, raw)
        if entry.resource.id is None:  # only types we skip may lack one
            entries.append(entry)
            continue
        if entry.label in seen:
            raise FhirImportError(
                f"the bundle has {entry.label} twice (also entry {seen[entry.label]})",
                index,
                entry.label,
            )
        seen[entry.label] = index
        if full_url:
            by_url[full_url] = entry.label
        entries.append(entry)

    context = _Context(tz, by_url, {e.label: e.resource for e in entries})
    plan = Plan()
    for entry in entries:
        try:
            _map(entry, context, plan)
        except _Bad as bad:
            raise FhirImportError(str(bad), entry.index, entry.label) from None
    return plan


def _validate_entry(index: int, raw: object) -> tuple[_Entry, str | None]:
    resource = raw.get("resource") if isinstance(raw, Mapping) else None
    if not isinstance(resource, Mapping):
        raise FhirImportError("has no resource", index)
    kind = resource.get("resourceType")
    rid = resource.get("id")
    label = f"{kind}/{rid}" if isinstance(rid, str) else str(kind)
    if not isinstance(kind, str) or not _is_resource_type(kind):
        raise FhirImportError(f"unknown resourceType {kind!r}", index)
    try:
        entry = BundleEntry.model_validate(raw)
    except ValidationError as exc:
        raise FhirImportError(_describe(exc), index, label) from None
    except KeyError:  # fhir.resources' lookup of an unknown type nested inside (contained)
        raise FhirImportError("contains an unknown resourceType", index, label) from None
    if not isinstance(rid, str) and kind in _SUPPORTED:
        # The id is the key a later import updates by; without it every run adds copies.
        raise FhirImportError("the resource has no id", index, label)
    assert entry.resource is not None
    return _Entry(index, label, entry.resource), entry.fullUrl


def _is_resource_type(name: str) -> bool:
    try:
        model = get_fhir_model_class(name)
    except ValueError:
        return False
    return issubclass(model, Resource)


def _describe(exc: ValidationError) -> str:
    """The first problem, where it is and what is wrong; never the value (it may be a name
    or a clinical note, and this line can end up in a terminal log)."""
    errors = exc.errors(include_input=False, include_url=False)
    first = errors[0]
    loc = [str(part) for part in first["loc"]]
    if loc[:1] == ["resource"]:
        loc = loc[1:]
    where = ".".join(loc) or "resource"
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{where}: {first['msg']}{more}"


class _Bad(Exception):
    """A problem with the entry being mapped; parse_bundle adds which entry."""


@dataclass(frozen=True)
class _Context:
    tz: dt.tzinfo
    by_url: dict[str, str]  # fullUrl -> "Type/id"
    resources: dict[str, Resource]  # "Type/id" -> the resource, for names of referents

    def target(self, reference: Reference | None) -> str | None:
        """A reference as "Type/id", whether written that way or as an entry's fullUrl."""
        if reference is None or not reference.reference:
            return None
        ref = reference.reference
        if ref in self.by_url:
            return self.by_url[ref]
        match = _LITERAL_REF.search(ref)
        return f"{match[1]}/{match[2]}" if match else None

    def patient(self, reference: Reference | None, what: str) -> str:
        target = self.target(reference)
        if target is None:
            raw = reference.reference if reference is not None else None
            raise _Bad(f"{what} must reference a Patient" + (f", not {raw!r}" if raw else ""))
        if not target.startswith("Patient/"):
            raise _Bad(f"{what} must reference a Patient, not {target}")
        return target

    def day(self, value: object, what: str) -> dt.date:
        if isinstance(value, dt.datetime):
            return _aware(value, self.tz).astimezone(self.tz).date()
        if isinstance(value, dt.date):
            return value
        if isinstance(value, str):  # fhir.resources keeps partial dates ("2019-05") as text
            raise _Bad(f"the {what} is not a full date")
        raise _Bad(f"has no {what}")


def _aware(value: dt.datetime, tz: dt.tzinfo) -> dt.datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=tz)


def _map(entry: _Entry, ctx: _Context, plan: Plan) -> None:
    r = entry.resource
    kind = r.get_resource_type()
    if kind not in _SUPPORTED:
        plan.skipped[kind] += 1
    elif isinstance(r, Patient):
        plan.patients.append(_patient(entry, r))
    elif isinstance(r, Appointment):
        _appointment(entry, r, ctx, plan)
    elif isinstance(r, Invoice):
        _invoice(entry, r, ctx, plan)
    else:
        _record(entry, r, ctx, plan)


def _withdraw(entry: _Entry, plan: Plan, why: str) -> None:
    plan.withdrawn.append(entry.label)
    plan.skipped[f"{why} {entry.resource.get_resource_type()}"] += 1


def _patient(entry: _Entry, r: Patient) -> PatientRow:
    name = clean_name(_person_name(r.name))
    if name is None:
        raise _Bad("has no usable name")
    birth = None
    if r.birthDate is not None:
        if not isinstance(r.birthDate, dt.date):
            raise _Bad("birthDate is not a full date")
        birth = r.birthDate
    email = None
    for point in r.telecom or []:
        if point.system == "email" and point.value and point.use != "old":
            email = clean_email(point.value)
            if email is None:
                raise _Bad("telecom: the email is not an email address")
            break
    return PatientRow(entry.index, entry.label, name, birth, email)


def _person_name(names: list[HumanName] | None, *, with_prefix: bool = False) -> str | None:
    if not names:
        return None
    ranked = sorted(names, key=lambda n: {"official": 0, "usual": 1}.get(n.use or "", 2))
    best = ranked[0]
    if best.text:
        return best.text
    parts = [*((best.prefix or []) if with_prefix else []), *(best.given or []), best.family]
    return " ".join(p for p in parts if p) or None


def _appointment(entry: _Entry, r: Appointment, ctx: _Context, plan: Plan) -> None:
    if r.status == "entered-in-error":
        _withdraw(entry, plan, "entered-in-error")
        return
    status = _APPOINTMENT_STATUS.get(r.status or "")
    if status is None:
        raise _Bad(f"status {r.status!r} is not one the portal can show")
    patient_refs: list[str] = []
    practitioner = location = None
    for part in r.participant or []:
        actor = part.actor
        target = ctx.target(actor) or ""
        kind = target.split("/")[0] or (actor.type if actor else None)
        if kind == "Patient":
            patient_refs.append(ctx.patient(actor, "participant"))
        elif kind in ("Practitioner", "PractitionerRole") and practitioner is None:
            practitioner = _display(actor, ctx)
        elif kind == "Location" and location is None:
            location = _display(actor, ctx)
    if len(patient_refs) != 1:
        raise _Bad(f"needs exactly one Patient participant, has {len(patient_refs)}")
    minutes = r.minutesDuration or 0
    if r.start is None or (r.end is None and not minutes):
        if r.status in _UNTIMED_OK:
            plan.skipped["Appointment without a time"] += 1
            return
        raise _Bad(f"a {r.status} appointment needs start and end")
    start = _aware(r.start, ctx.tz)
    end = _aware(r.end, ctx.tz) if r.end else start + dt.timedelta(minutes=minutes)
    if end < start:
        raise _Bad("end is before start")
    plan.rows.append(
        AppointmentRow(
            entry.index,
            entry.label,
            patient_refs[0],
            int(start.timestamp()),
            int(end.timestamp()),
            practitioner,
            location,
            status,
        )
    )


def _display(actor: Reference | None, ctx: _Context) -> str | None:
    """The participant's display name, else the name of the resource it points to in the
    bundle (a Location's name, then its description)."""
    if actor is None:
        return None
    if actor.display:
        return _short(actor.display, TITLE_MAX)
    referent = ctx.resources.get(ctx.target(actor) or "")
    if isinstance(referent, Practitioner):
        name = _person_name(referent.name, with_prefix=True)  # "Dr …", as patients know them
        return _short(name, TITLE_MAX) if name else None
    if isinstance(referent, Location):
        text = referent.name or referent.description
        return _short(text, TITLE_MAX) if text else None
    return None


def _invoice(entry: _Entry, r: Invoice, ctx: _Context, plan: Plan) -> None:
    if r.status in ("draft", "cancelled", "entered-in-error"):
        _withdraw(entry, plan, r.status)
        return
    if r.status not in ("issued", "balanced"):
        raise _Bad(f"status {r.status!r} is not one the portal can show")
    patient_ref = ctx.patient(r.subject, "subject")
    number = next((i.value for i in r.identifier or [] if i.value), None)
    if not number:
        raise _Bad("has no identifier to use as the invoice number")
    money = r.totalGross or r.totalNet
    if money is None or money.value is None:
        raise _Bad("has no totalGross or totalNet")
    currency = (money.currency or "").upper()
    if not is_currency(currency):
        raise _Bad(f"currency {money.currency!r} is not an ISO 4217 code")
    plan.rows.append(
        InvoiceRow(
            entry.index,
            entry.label,
            patient_ref,
            _short(number, 64),
            ctx.day(r.date, "date"),
            _minor_units(Decimal(money.value), currency),
            currency,
            r.status == "balanced",
        )
    )


def _minor_units(value: Decimal, currency: str) -> int:
    """12.30 AUD -> 1230; refuses amounts finer than the currency allows (12.305 AUD)."""
    places = get_currency_precision(currency)
    try:
        scaled = value.scaleb(places)
        whole = scaled.to_integral_value()
    except InvalidOperation:
        raise _Bad(f"the amount is not a number of {currency}") from None
    if scaled != whole:
        raise _Bad(f"the amount has more than {places} decimals, which {currency} allows")
    return int(whole)


def _record(entry: _Entry, r: Resource, ctx: _Context, plan: Plan) -> None:
    kind = _RECORD_KINDS[r.get_resource_type()]
    if isinstance(r, Condition):
        if _code(r.verificationStatus) == "entered-in-error":
            _withdraw(entry, plan, "entered-in-error")
            return
        patient_ref = ctx.patient(r.subject, "subject")
        when = r.recordedDate or r.onsetDateTime or (r.onsetPeriod and r.onsetPeriod.start)
        details = _words(r.clinicalStatus)
        code = r.code
    elif isinstance(r, Immunization):
        if r.status == "entered-in-error":
            _withdraw(entry, plan, "entered-in-error")
            return
        patient_ref = ctx.patient(r.patient, "patient")
        when = r.occurrenceDateTime or r.recorded  # occurrenceString is free text
        parts = ["not done" if r.status == "not-done" else (r.status or "")]
        if r.lotNumber:
            parts.append(f"lot {r.lotNumber}")
        details = ", ".join(p for p in parts if p)
        code = r.vaccineCode
    elif isinstance(r, Observation):
        if r.status in ("entered-in-error", "cancelled"):
            _withdraw(entry, plan, r.status)
            return
        patient_ref = ctx.patient(r.subject, "subject")
        when = (
            r.effectiveDateTime
            or r.effectiveInstant
            or (r.effectivePeriod and r.effectivePeriod.start)
            or r.issued
        )
        details = _observation_value(r)
        code = r.code
    else:
        assert isinstance(r, AllergyIntolerance)
        if _code(r.verificationStatus) == "entered-in-error":
            _withdraw(entry, plan, "entered-in-error")
            return
        patient_ref = ctx.patient(r.patient, "patient")
        when = r.recordedDate or r.onsetDateTime or (r.onsetPeriod and r.onsetPeriod.start)
        parts = [f"{r.criticality} criticality" if r.criticality else ""]
        for reaction in r.reaction or []:
            parts.extend(_words(m) for m in reaction.manifestation or [])
        details = ", ".join(p for p in parts if p)
        code = r.code
    title = _words(code)
    if not title:
        raise _Bad("code has no text or display to show as the title")
    plan.rows.append(
        RecordRow(
            entry.index,
            entry.label,
            patient_ref,
            ctx.day(when, "date"),
            kind,
            _short(title, TITLE_MAX),
            _sentence(_short(details, DETAILS_MAX)),
        )
    )


def _code(concept: CodeableConcept | None) -> str | None:
    return next((c.code for c in (concept.coding or []) if c.code), None) if concept else None


def _words(concept: CodeableConcept | None) -> str:
    """What people read for a code: its text, else the first display, else the code."""
    if concept is None:
        return ""
    if concept.text:
        return concept.text
    for coding in concept.coding or []:
        if coding.display:
            return coding.display
    return _code(concept) or ""


def _observation_value(r: Observation) -> str:
    q = r.valueQuantity
    if q is not None and q.value is not None:
        number = format(Decimal(q.value), "f")
        unit = q.unit or q.code or ""
        return f"{q.comparator or ''}{number} {unit}".strip()
    if r.valueCodeableConcept is not None:
        return _words(r.valueCodeableConcept)
    if r.valueString:
        return r.valueString
    if r.valueBoolean is not None:
        return "yes" if r.valueBoolean else "no"
    if r.valueInteger is not None:
        return str(r.valueInteger)
    if r.dataAbsentReason is not None:
        return _words(r.dataAbsentReason)
    return r.status or ""


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:]


def _short(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


# --- Writing ---------------------------------------------------------------------------


async def import_bundle(db: Database, data: object, tz: dt.tzinfo) -> ImportSummary:
    """Validate, then write everything in one transaction; raises FhirImportError (and
    writes nothing) at the first entry that cannot be imported."""
    plan = parse_bundle(data, tz)
    async with db.transaction() as conn:
        ids: dict[str, int] = {}
        for p in plan.patients:
            ids[p.fhir_id] = await _upsert_patient(conn, p)
        counts: Counter[str] = Counter()
        for row in plan.rows:
            patient_id = ids.get(row.patient_ref)
            if patient_id is None:
                found = await portal.patient_by_fhir_id(conn, row.patient_ref)
                if found is None:
                    raise FhirImportError(
                        f"unknown patient reference {row.patient_ref} (not in this bundle "
                        "nor imported before)",
                        row.index,
                        row.fhir_id,
                    )
                patient_id = ids[row.patient_ref] = found.id
            await _upsert(conn, patient_id, row)
            counts[type(row).__name__] += 1
        removed = 0
        for fhir_id in plan.withdrawn:
            removed += await portal.forget_fhir(conn, fhir_id)
        summary = ImportSummary(
            patients=len(plan.patients),
            appointments=counts["AppointmentRow"],
            invoices=counts["InvoiceRow"],
            records=counts["RecordRow"],
            removed=removed,
            skipped=tuple(sorted(plan.skipped.items())),
        )
        await audit.record(
            conn,
            Action.FHIR_IMPORTED,
            detail=f"p{summary.patients} a{summary.appointments} i{summary.invoices}"
            f" r{summary.records} x{summary.removed}",
        )
    return summary


async def _upsert(conn: Writes, patient_id: int, row: Row) -> None:
    if isinstance(row, AppointmentRow):
        await portal.add_appointment(
            conn,
            patient_id,
            row.starts_at,
            row.ends_at,
            row.practitioner,
            row.location,
            row.status,
            fhir_id=row.fhir_id,
        )
    elif isinstance(row, InvoiceRow):
        await portal.add_invoice(
            conn,
            patient_id,
            row.number,
            row.issued_on,
            row.amount_minor,
            row.currency,
            row.paid,
            fhir_id=row.fhir_id,
        )
    else:
        await portal.add_record(
            conn,
            patient_id,
            row.recorded_on,
            row.kind,
            row.title,
            row.details,
            fhir_id=row.fhir_id,
        )


async def _upsert_patient(conn: Writes, p: PatientRow) -> int:
    """The patient imported before under this id; else the one who has this email (the
    practice invited them by hand before the import); else a new patient."""
    how = "updated"
    patient = await portal.patient_by_fhir_id(conn, p.fhir_id)
    holder = await patients.by_email(conn, p.email) if p.email else None
    if patient is None and holder is not None:
        linked = await portal.fhir_id_of_patient(conn, holder.id)
        if linked is not None:
            raise FhirImportError(
                f"its email belongs to the patient imported as {linked}", p.index, p.fhir_id
            )
        patient, how = holder, "linked"
    elif holder is not None and patient is not None and holder.id != patient.id:
        raise FhirImportError("its email belongs to another patient", p.index, p.fhir_id)
    if patient is None:
        patient, how = await patients.create(conn, p.full_name, p.date_of_birth, p.email), "created"
    await portal.update_patient_from_source(
        conn,
        patient.id,
        fhir_id=p.fhir_id,
        full_name=p.full_name,
        date_of_birth=p.date_of_birth,
        email=p.email,
    )
    if p.email and (how == "created" or (patient.email or "").lower() != p.email.lower()):
        # Requests sent to this address before anyone had it now reach this patient.
        await grants.attach_email_requests(conn, patient.id, p.email)
    await audit.record(conn, Action.PATIENT_IMPORTED, subject_patient_id=patient.id, detail=how)
    return patient.id
