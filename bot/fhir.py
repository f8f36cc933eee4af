"""Import a FHIR R4 Bundle from the practice's system: patients, appointments, invoices and
clinical records.

Two steps. `parse_bundle` reads the bundle entry by entry and turns each into plain rows
without touching the database; references are resolved once every entry has been read,
through an entry's `fullUrl` (often `urn:uuid:…` in transaction and document bundles) as
well as "Type/id". `write_plan` then writes those rows in one transaction, finding the
patients they belong to in the bundle or among those imported before.

An entry that cannot be imported is skipped, with what needed it (the appointments of a
patient that was skipped), and listed in `Plan.skipped` (index, type, id, reason); the
rest is imported. With `strict=True` the first such entry stops the import instead and
nothing is written (FhirImportError, "entry 3 (Observation/obs-2): ...").

Rows are keyed by the resource they came from: "Type/id", or the fullUrl of an entry that
has no id. Importing the same bundle again updates them instead of adding copies, and the
summary says what was new, what changed and what was already so. A resource the source has
withdrawn (entered in error, a cancelled invoice) is not imported, and an earlier copy is
removed.

Reading a large Synthea-shaped bundle was slow and held much memory (benchmarks/README.md):
the whole file as Python objects, then every entry validated with BundleEntry, types the
portal never reads included, some costly to validate. Now the file's text is decoded
one entry at a time (`_Text`), resource types the portal does not read are counted and
not validated, and each other entry is validated with the model of its own type on the
fields the portal reads: a field it never looks at (or one an older FHIR version had)
cannot stop an entry. A few shapes of STU3 and DSTU2 are brought up to R4 first
(`_upgrade`).

fhir.resources has no R4 models that run on pydantic 2: its R4 releases (6.x) need pydantic
1, and the pydantic-2 releases (8.x) carry R5, R4B and STU3. R4B changed only the medication
definition, evidence and subscription resources, so R4 content of the types read here
validates unchanged against the R4B models.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import json
import re
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, NoReturn

from babel.numbers import get_currency_precision, is_currency
from fhir.resources.R4B import get_fhir_model_class
from fhir.resources.R4B.allergyintolerance import AllergyIntolerance
from fhir.resources.R4B.appointment import Appointment
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.codeableconcept import CodeableConcept
from fhir.resources.R4B.condition import Condition
from fhir.resources.R4B.humanname import HumanName
from fhir.resources.R4B.immunization import Immunization
from fhir.resources.R4B.invoice import Invoice
from fhir.resources.R4B.location import Location
from fhir.resources.R4B.observation import Observation
from fhir.resources.R4B.patient import Patient
from fhir.resources.R4B.practitioner import Practitioner
from fhir.resources.R4B.quantity import Quantity
from fhir.resources.R4B.resource import Resource
from pydantic import ValidationError

from bot import appointment_changes, measures
from bot.reminders import tell_if_moved, tell_new_items
from bot.text import clean_email, clean_name
from storage import Database, audit, grants, patients, portal, reminders
from storage.audit import Action
from storage.db import Writes
from storage.notifications import Item
from storage.portal import Outcome

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
# "Patient/p1", or the same at the end of an absolute URL, optionally with a version.
_LITERAL_REF = re.compile(r"(?:^|/)([A-Z][A-Za-z]+)/([A-Za-z0-9.-]{1,64})(?:/_history/[^/]+)?$")
_ID = re.compile(r"^[A-Za-z0-9.-]{1,64}$")


class FhirImportError(Exception):
    """One line for the operator; names the entry when one is at fault. `skipped` lists
    the entries left out before it, when it ends an import that skips them."""

    def __init__(
        self,
        message: str,
        index: int | None = None,
        label: str | None = None,
        skipped: tuple[Skipped, ...] = (),
    ):
        where = "" if index is None else f"entry {index}" + (f" ({label})" if label else "")
        super().__init__(f"{where}: {message}" if where else message)
        self.skipped = skipped


# --- What a bundle holds, as rows ------------------------------------------------------


@dataclass(frozen=True)
class Where:
    """An entry: its place in Bundle.entry, its resourceType and what it is known by."""

    index: int
    kind: str
    label: str | None  # "Type/id", else the entry's fullUrl

    def name(self) -> str | None:
        if self.label is None or self.label.startswith(f"{self.kind}/"):
            return self.label or self.kind or None
        return f"{self.kind} {self.label}" if self.kind else self.label


@dataclass(frozen=True)
class Skipped:
    where: Where
    reason: str

    def line(self) -> str:
        name = self.where.name()
        return f"entry {self.where.index}" + (f" ({name})" if name else "") + f": {self.reason}"


@dataclass(frozen=True)
class PatientRow:
    where: Where
    fhir_id: str
    full_name: str
    date_of_birth: dt.date | None
    email: str | None
    deceased: bool = False
    deceased_on: dt.date | None = None


@dataclass(frozen=True)
class AppointmentRow:
    where: Where
    fhir_id: str
    patient_ref: str
    starts_at: int
    ends_at: int
    practitioner: str | None
    location: str | None
    status: str
    source_updated_at: int | None = None  # meta.lastUpdated: when the practice last changed it


@dataclass(frozen=True)
class InvoiceRow:
    where: Where
    fhir_id: str
    patient_ref: str
    number: str
    issued_on: dt.date
    amount_minor: int
    currency: str
    paid: bool


@dataclass(frozen=True)
class RecordRow:
    where: Where
    fhir_id: str
    patient_ref: str
    recorded_on: dt.date | None
    kind: str
    title: str
    details: str
    measurement: str | None = None


Row = AppointmentRow | InvoiceRow | RecordRow


@dataclass
class Plan:
    patients: list[PatientRow] = field(default_factory=list)
    rows: list[Row] = field(default_factory=list)
    withdrawn: list[str] = field(default_factory=list)  # fhir_ids to remove if stored
    left_out: Counter[str] = field(default_factory=Counter)  # not for the portal, by kind
    skipped: list[Skipped] = field(default_factory=list)  # could not be imported
    skipped_labels: dict[str, str] = field(default_factory=dict)  # label -> reason


_KINDS = ("patient", "appointment", "invoice", "clinical record")
_OUTCOMES: tuple[Outcome, ...] = ("new", "updated", "unchanged")


@dataclass(frozen=True)
class ImportSummary:
    counts: Mapping[str, Mapping[Outcome, int]]  # "patient" -> {"new": 2, ...}
    removed: int
    left_out: tuple[tuple[str, int], ...]
    skipped: tuple[Skipped, ...]

    def total(self, kind: str) -> int:
        return sum(self.counts.get(kind, {}).values())

    @property
    def patients(self) -> int:
        return self.total("patient")

    @property
    def appointments(self) -> int:
        return self.total("appointment")

    @property
    def invoices(self) -> int:
        return self.total("invoice")

    @property
    def records(self) -> int:
        return self.total("clinical record")

    def line(self) -> str:
        text = "imported " + ", ".join(_count(self.total(k), k) for k in _KINDS)
        groups = {
            outcome: [(self.counts.get(k, {}).get(outcome, 0), k) for k in _KINDS]
            for outcome in _OUTCOMES
        }
        present = [o for o in _OUTCOMES if any(n for n, _ in groups[o])]
        if len(present) == 1:
            text += f" (all {present[0]})"
        elif present:
            text += (
                " ("
                + "; ".join(
                    f"{o}: " + ", ".join(_count(n, k) for n, k in groups[o] if n) for o in present
                )
                + ")"
            )
        if self.removed:
            text += f"; removed {self.removed} withdrawn at the source"
        if self.left_out:
            total = sum(n for _, n in self.left_out)
            kinds = ", ".join(what if n == 1 else f"{what} ×{n}" for what, n in self.left_out)
            text += f"; left out {total} ({kinds})"
        if self.skipped:
            text += f"; {len(self.skipped)} skipped"
        return text


def _count(n: int, what: str) -> str:
    return f"{n} {what}" + ("" if n == 1 else "s")


# --- Reading the file ------------------------------------------------------------------


_DECODER = json.JSONDecoder(parse_float=Decimal)  # FHIR decimals keep their precision
_SPACE = re.compile(r"[ \t\n\r]*")


class _Text:
    """A JSON file's top-level object, member by member, with the items of its "entry"
    array decoded one at a time: the text stays in memory, each entry's objects only
    while it is read. Decimals stay exact: "0.10" AUD must not become 0.1000000000000000055.
    Python's own decoder does the decoding (raw_decode), so this is only the walk between
    the members and items."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self.text = path.read_text(encoding="utf-8-sig")  # OSError: the caller's
        except UnicodeDecodeError:
            raise FhirImportError(f"{path}: not UTF-8 text") from None
        self.pos = 0

    def members(self) -> Iterator[tuple[str, object]]:
        self._space()
        if not self.text.startswith("{", self.pos):
            found = self._value()
            self._end()
            raise FhirImportError(f"not a FHIR Bundle (resourceType is {type(found).__name__!r})")
        self.pos += 1
        self._space()
        closed = self._next("}")
        while not closed:
            self._space()
            if not self.text.startswith('"', self.pos):
                self._fail("Expecting property name enclosed in double quotes")
            key = self._value()
            self._space()
            if not self._next(":"):
                self._fail("Expecting ':' delimiter")
            self._space()
            if key == "entry" and self.text.startswith("[", self.pos):
                items = self._items()
                yield "entry", items
                for _ in items:  # what the caller did not read, so that the walk goes on
                    pass
            else:
                yield str(key), self._value()
            self._space()
            closed = self._next("}")
            if not closed and not self._next(","):
                self._fail("Expecting ',' delimiter")
        self._end()

    def _items(self) -> Iterator[object]:
        self.pos += 1
        self._space()
        if self._next("]"):
            return
        while True:
            self._space()
            yield self._value()
            self._space()
            if self._next("]"):
                return
            if not self._next(","):
                self._fail("Expecting ',' delimiter")

    def _value(self) -> object:
        try:
            value, self.pos = _DECODER.raw_decode(self.text, self.pos)
        except json.JSONDecodeError as exc:
            self._fail(exc.msg, exc.pos)
        return value

    def _space(self) -> None:
        match = _SPACE.match(self.text, self.pos)
        assert match is not None
        self.pos = match.end()

    def _next(self, char: str) -> bool:
        if self.text.startswith(char, self.pos):
            self.pos += 1
            return True
        return False

    def _end(self) -> None:
        self._space()
        if self.pos != len(self.text):
            self._fail("Extra data")

    def _fail(self, message: str, pos: int | None = None) -> NoReturn:
        at = self.pos if pos is None else pos
        line = self.text.count("\n", 0, at) + 1
        raise FhirImportError(f"{self.path} line {line}: not valid JSON ({message})")


def load_bundle(path: Path) -> object:
    """The whole file's JSON, decimals kept exact (for tests and small files; the
    importer reads a file entry by entry instead)."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise FhirImportError(f"{path}: not UTF-8 text") from None
    try:
        return json.loads(text, parse_float=Decimal)
    except json.JSONDecodeError as exc:
        raise FhirImportError(f"{path} line {exc.lineno}: not valid JSON ({exc.msg})") from None


def _object_members(data: object) -> Iterator[tuple[str, object]]:
    if not isinstance(data, Mapping):
        raise FhirImportError(f"not a FHIR Bundle (resourceType is {type(data).__name__!r})")
    if "resourceType" in data:
        yield "resourceType", data["resourceType"]
    for key, value in data.items():
        if key not in ("resourceType", "entry"):
            yield key, value
    if "entry" in data:
        yield "entry", data["entry"]


# --- Parsing and validation ------------------------------------------------------------


def parse_bundle(data: object, tz: dt.tzinfo, *, strict: bool = False) -> Plan:
    """Read the bundle (a file's Path, or its JSON already loaded) and map it to rows;
    touches no database. `tz` is the practice's: a record timed 23:30 there belongs to
    that day."""
    members = _Text(data).members() if isinstance(data, Path) else _object_members(data)
    reading = _Reading(tz, strict)
    header: dict[str, object] = {}
    for key, value in members:
        if key == "entry":
            if isinstance(value, str | bytes | Mapping) or not isinstance(value, Iterable):
                raise FhirImportError("bundle: entry must be a list")
            for index, raw in enumerate(value):
                reading.entry(index, raw)
            continue
        header[key] = value
        if key == "resourceType" and value != "Bundle":
            raise FhirImportError(f"not a FHIR Bundle (resourceType is {value!r})")
    if header.get("resourceType") != "Bundle":
        raise FhirImportError("not a FHIR Bundle (resourceType is None)")
    try:
        Bundle.model_validate(header)
    except ValidationError as exc:
        raise FhirImportError(f"bundle: {_describe(exc)}") from None
    return reading.finish()


class _Bad(Exception):
    """A problem with the entry being read; the caller adds which entry."""


@dataclass(frozen=True)
class _Participant:
    reference: str | None
    display: str | None
    type: str | None


@dataclass(frozen=True)
class _AppointmentDraft:
    """An appointment whose participants are resolved once the whole bundle is read."""

    where: Where
    participants: tuple[_Participant, ...]
    starts_at: int
    ends_at: int
    status: str
    source_updated_at: int | None = None


class _Reading:
    """What has been read so far: rows waiting for their references, and what each
    fullUrl and label stands for."""

    def __init__(self, tz: dt.tzinfo, strict: bool) -> None:
        self.tz = tz
        self.strict = strict
        self.plan = Plan()
        self.by_url: dict[str, str] = {}  # fullUrl -> label
        self.kinds: dict[str, str] = {}  # label -> resourceType, for what the bundle holds
        self.first: dict[str, int] = {}  # label -> index of the entry that has it
        self.names: dict[str, str] = {}  # Practitioner/Location label -> name
        # Rows whose patient reference (and the field it came from) is still to resolve.
        self.pending: list[tuple[Row, str] | _AppointmentDraft] = []

    def entry(self, index: int, raw: object) -> None:
        resource = raw.get("resource") if isinstance(raw, Mapping) else None
        if not isinstance(resource, Mapping):
            self.skip(Where(index, "", None), "has no resource")
            return
        kind = resource.get("resourceType")
        kind = kind if isinstance(kind, str) else ""
        full_url = raw.get("fullUrl") if isinstance(raw, Mapping) else None
        full_url = full_url if isinstance(full_url, str) and full_url else None
        where = Where(index, kind, _label(kind, resource.get("id"), full_url))
        try:
            self._read(where, resource, full_url)
        except _Bad as bad:
            self.skip(where, str(bad))

    def _read(self, where: Where, resource: Mapping[str, Any], full_url: str | None) -> None:
        if not where.kind or not _is_resource_type(where.kind):
            raise _Bad(f"unknown resourceType {resource.get('resourceType')!r}")
        read = _READERS.get(where.kind)
        if read is None:
            self.plan.left_out[where.kind] += 1
            return
        rid = resource.get("id")
        if rid is not None and not (isinstance(rid, str) and _ID.match(rid)):
            raise _Bad("the id is not a FHIR id")
        label = where.label
        if label is None:
            # The key a later import updates by; without one every import adds copies.
            raise _Bad("the resource has no id, and the entry no fullUrl")
        if label in self.first:
            raise _Bad(f"the bundle has {label} twice (also entry {self.first[label]})")
        self.first[label] = where.index
        self.kinds[label] = where.kind
        if full_url:
            self.by_url[full_url] = label
        read(self, where, _validated(where.kind, resource))

    def skip(self, where: Where, reason: str) -> None:
        if self.strict:
            raise FhirImportError(reason, where.index, where.name())
        self.plan.skipped.append(Skipped(where, reason))
        if where.label and self.first.get(where.label, where.index) == where.index:
            self.plan.skipped_labels[where.label] = reason  # not a second copy's

    def withdraw(self, where: Where, why: str) -> None:
        assert where.label is not None
        self.plan.withdrawn.append(where.label)
        self.plan.left_out[f"{why} {where.kind}"] += 1

    def day(self, *candidates: object) -> dt.date | None:
        """The practice's day of the first full date or time; None if there is none
        (fhir.resources keeps a partial date, "2019-05", as text)."""
        for value in candidates:
            if isinstance(value, dt.datetime):
                return _aware(value, self.tz).astimezone(self.tz).date()
            if isinstance(value, dt.date):
                return value
        return None

    # References, once the whole bundle is read.

    def target(self, reference: str | None) -> str | None:
        """A reference as the label of what it points to: an entry's fullUrl, or Type/id."""
        if not reference:
            return None
        if reference in self.by_url:
            return self.by_url[reference]
        match = _LITERAL_REF.search(reference)
        return f"{match[1]}/{match[2]}" if match else None

    def kind_of(self, label: str | None) -> str | None:
        if label is None:
            return None
        return self.kinds.get(label) or (label.split("/")[0] if "/" in label else None)

    def patient(self, reference: str | None, what: str) -> str:
        label = self.target(reference)
        if label is None:
            if reference and reference.startswith("urn:"):
                raise _Bad(f"{what} refers to {reference}, which is not in this bundle")
            raise _Bad(
                f"{what} must reference a Patient" + (f", not {reference!r}" if reference else "")
            )
        if self.kind_of(label) != "Patient":
            raise _Bad(f"{what} must reference a Patient, not {label}")
        if label in self.plan.skipped_labels and self.first.get(label) is not None:
            raise _Bad(f"its patient {label} was skipped")
        return label

    def finish(self) -> Plan:
        for item in self.pending:
            try:
                self.plan.rows.extend(self._resolved(item))
            except _Bad as bad:
                self.skip(
                    item.where if isinstance(item, _AppointmentDraft) else item[0].where, str(bad)
                )
        self.pending = []
        return self.plan

    def _resolved(self, item: tuple[Row, str] | _AppointmentDraft) -> list[Row]:
        if isinstance(item, _AppointmentDraft):
            return list(self._appointment_rows(item))
        row, what = item
        return [dataclasses.replace(row, patient_ref=self.patient(row.patient_ref, what))]

    def _appointment_rows(self, draft: _AppointmentDraft) -> list[AppointmentRow]:
        """One row per Patient participant: an appointment for two (a couple, a parent and
        a newborn) is in each one's portal."""
        patient_refs: list[str] = []
        left_out: _Bad | None = None  # a patient skipped: the others still have it
        practitioner = location = None
        for part in draft.participants:
            label = self.target(part.reference)
            kind = self.kind_of(label) or part.type
            if kind == "Patient":
                try:
                    ref = self.patient(part.reference, "participant")
                except _Bad as bad:
                    left_out = left_out or bad
                    continue
                if ref not in patient_refs:
                    patient_refs.append(ref)
            elif kind in ("Practitioner", "PractitionerRole") and practitioner is None:
                practitioner = self._display(part, label)
            elif kind == "Location" and location is None:
                location = self._display(part, label)
        if not patient_refs:
            raise left_out or _Bad("has no Patient participant")
        assert draft.where.label is not None
        return [
            AppointmentRow(
                draft.where,
                draft.where.label if n == 0 else f"{draft.where.label}#{ref}",
                ref,
                draft.starts_at,
                draft.ends_at,
                practitioner,
                location,
                draft.status,
                draft.source_updated_at,
            )
            for n, ref in enumerate(patient_refs)
        ]

    def _display(self, part: _Participant, label: str | None) -> str | None:
        """The participant's display name, else the name of the resource it points to in
        the bundle (a Practitioner's name, a Location's name or description)."""
        if part.display:
            return _short(part.display, TITLE_MAX)
        name = self.names.get(label or "")
        return _short(name, TITLE_MAX) if name else None


def _label(kind: str, rid: object, full_url: str | None) -> str | None:
    """What an entry is known by: "Type/id"; without an id, its fullUrl ("Type/id" too if
    that is a RESTful URL of the same type)."""
    if isinstance(rid, str) and rid:
        return f"{kind}/{rid}"
    if full_url is None:
        return None
    match = _LITERAL_REF.search(full_url)
    return f"{kind}/{match[2]}" if match and match[1] == kind else full_url


@functools.cache
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
    where = ".".join(str(part) for part in first["loc"]) or "resource"
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{where}: {first['msg']}{more}"


def _aware(value: dt.datetime, tz: dt.tzinfo) -> dt.datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=tz)


# The fields read of each type: only these are validated (the first is the model).
_READS: dict[str, tuple[type[Resource], tuple[str, ...]]] = {
    "Patient": (Patient, ("name", "birthDate", "telecom", "deceasedBoolean", "deceasedDateTime")),
    "Practitioner": (Practitioner, ("name",)),
    "Location": (Location, ("name", "description")),
    "Appointment": (
        Appointment,
        ("status", "start", "end", "minutesDuration", "participant", "meta"),
    ),
    "Invoice": (Invoice, ("status", "identifier", "subject", "date", "totalGross", "totalNet")),
    "Condition": (
        Condition,
        (
            "clinicalStatus",
            "verificationStatus",
            "code",
            "subject",
            "recordedDate",
            "onsetDateTime",
            "onsetPeriod",
            "onsetString",
        ),
    ),
    "Immunization": (
        Immunization,
        (
            "status",
            "vaccineCode",
            "patient",
            "occurrenceDateTime",
            "occurrenceString",
            "primarySource",
            "lotNumber",
        ),
    ),
    "Observation": (
        Observation,
        (
            "status",
            "code",
            "subject",
            "effectiveDateTime",
            "effectiveInstant",
            "effectivePeriod",
            "issued",
            "valueQuantity",
            "valueCodeableConcept",
            "valueString",
            "valueBoolean",
            "valueInteger",
            "dataAbsentReason",
            "component",
        ),
    ),
    "AllergyIntolerance": (
        AllergyIntolerance,
        (
            "clinicalStatus",
            "verificationStatus",
            "code",
            "patient",
            "recordedDate",
            "onsetDateTime",
            "onsetPeriod",
            "criticality",
            "reaction",
        ),
    ),
}


def _validated(kind: str, resource: Mapping[str, Any]) -> Resource:
    model, fields = _READS[kind]
    data = _upgrade(kind, resource)
    try:
        return model.model_validate({k: data[k] for k in fields if k in data})
    except ValidationError as exc:
        raise _Bad(_describe(exc)) from None


def _upgrade(kind: str, resource: Mapping[str, Any]) -> Mapping[str, Any]:
    """Shapes of STU3 and DSTU2 that real exports still carry, in their R4 form."""
    if kind not in ("Condition", "AllergyIntolerance", "Immunization"):
        return resource
    r = dict(resource)
    if kind in ("Condition", "AllergyIntolerance"):
        for name in ("clinicalStatus", "verificationStatus"):
            if isinstance(r.get(name), str):  # a code until R4
                r[name] = {"coding": [{"code": r[name]}]}
        for old in ("assertedDate", "dateRecorded"):
            if old in r:
                r.setdefault("recordedDate", r[old])
    if kind == "Condition" and "patient" in r:  # DSTU2
        r.setdefault("subject", r["patient"])
    if kind == "AllergyIntolerance":  # DSTU2
        if "substance" in r:
            r.setdefault("code", r["substance"])
        if isinstance(r.get("onset"), str):
            r.setdefault("onsetDateTime", r["onset"])
    if kind == "Immunization":
        if "date" in r:  # occurrence[x] since R4
            r.setdefault("occurrenceDateTime", r["date"])
        if r.get("notGiven") is True or r.get("wasNotGiven") is True:
            r["status"] = "not-done"
        if isinstance(r.get("reported"), bool):  # DSTU2
            r.setdefault("primarySource", not r["reported"])
    return r


# --- One function per resource type ----------------------------------------------------


def _patient(reading: _Reading, where: Where, r: Patient) -> None:
    assert where.label is not None
    name = clean_name(_person_name(r.name))
    if name is None:
        # Newborn and fetal records often have none yet. A nameless patient cannot be
        # invited, linked or told apart from a twin in a list; once the practice's system
        # names them, the next import brings them and everything that was skipped with them.
        raise _Bad("has no usable name (a newborn or fetal record?)")
    birth = r.birthDate if isinstance(r.birthDate, dt.date) else None  # "1980-05": unknown
    email = None
    for point in r.telecom or []:
        if point.system == "email" and point.value and point.use != "old":
            email = clean_email(point.value)
            if email is None:
                raise _Bad("telecom: the email is not an email address")
            break
    deceased = bool(r.deceasedBoolean) or r.deceasedDateTime is not None
    deceased_on = reading.day(r.deceasedDateTime)
    reading.plan.patients.append(
        PatientRow(where, where.label, name, birth, email, deceased, deceased_on)
    )


def _person_name(names: list[HumanName] | None, *, with_prefix: bool = False) -> str | None:
    if not names:
        return None
    ranked = sorted(names, key=lambda n: {"official": 0, "usual": 1}.get(n.use or "", 2))
    best = ranked[0]
    if best.text:
        return best.text
    parts = [*((best.prefix or []) if with_prefix else []), *(best.given or []), best.family]
    return " ".join(p for p in parts if p) or None


def _practitioner(reading: _Reading, where: Where, r: Practitioner) -> None:
    name = _person_name(r.name, with_prefix=True)  # "Dr …", as patients know them
    if name and where.label:
        reading.names[where.label] = name
    reading.plan.left_out[where.kind] += 1


def _location(reading: _Reading, where: Where, r: Location) -> None:
    text = r.name or r.description
    if text and where.label:
        reading.names[where.label] = text
    reading.plan.left_out[where.kind] += 1


def _appointment(reading: _Reading, where: Where, r: Appointment) -> None:
    if r.status == "entered-in-error":
        reading.withdraw(where, "entered-in-error")
        return
    status = _APPOINTMENT_STATUS.get(r.status or "")
    if status is None:
        raise _Bad(f"status {r.status!r} is not one the portal can show")
    minutes = r.minutesDuration or 0
    if r.start is None or (r.end is None and not minutes):
        if r.status in _UNTIMED_OK:
            reading.plan.left_out["Appointment without a time"] += 1
            return
        raise _Bad(f"a {r.status} appointment needs start and end")
    start = _aware(r.start, reading.tz)
    end = _aware(r.end, reading.tz) if r.end else start + dt.timedelta(minutes=minutes)
    if end < start:
        raise _Bad("end is before start")
    participants = tuple(
        _Participant(
            part.actor.reference if part.actor else None,
            part.actor.display if part.actor else None,
            part.actor.type if part.actor else None,
        )
        for part in r.participant or []
    )
    updated = r.meta.lastUpdated if r.meta else None
    reading.pending.append(
        _AppointmentDraft(
            where,
            participants,
            int(start.timestamp()),
            int(end.timestamp()),
            status,
            int(_aware(updated, reading.tz).timestamp()) if updated else None,
        )
    )


def _invoice(reading: _Reading, where: Where, r: Invoice) -> None:
    assert where.label is not None
    if r.status in ("draft", "cancelled", "entered-in-error"):
        reading.withdraw(where, r.status)
        return
    if r.status not in ("issued", "balanced"):
        raise _Bad(f"status {r.status!r} is not one the portal can show")
    number = next((i.value for i in r.identifier or [] if i.value), None)
    if not number:
        raise _Bad("has no identifier to use as the invoice number")
    money = r.totalGross or r.totalNet
    if money is None or money.value is None:
        raise _Bad("has no totalGross or totalNet")
    currency = (money.currency or "").upper()
    if not is_currency(currency):
        raise _Bad(f"currency {money.currency!r} is not an ISO 4217 code")
    issued_on = reading.day(r.date)
    if issued_on is None:
        raise _Bad("the date is not a full date" if r.date else "has no date")
    row = InvoiceRow(
        where,
        where.label,
        _reference(r.subject),
        _short(number, 64),
        issued_on,
        _minor_units(Decimal(money.value), currency),
        currency,
        r.status == "balanced",
    )
    reading.pending.append((row, "subject"))


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


def _condition(reading: _Reading, where: Where, r: Condition) -> None:
    if _code(r.verificationStatus) == "entered-in-error":
        reading.withdraw(where, "entered-in-error")
        return
    day = reading.day(r.recordedDate, r.onsetDateTime, r.onsetPeriod and r.onsetPeriod.start)
    details = [_words(r.clinicalStatus)]
    onset = r.onsetString or (r.onsetDateTime if isinstance(r.onsetDateTime, str) else None)
    if onset:  # "childhood", or a partial date: words the portal shows as they are
        details.append(f"onset {onset}")
    _add_record(reading, where, (r.subject, "subject"), day, "condition", r.code, details)


def _immunization(reading: _Reading, where: Where, r: Immunization) -> None:
    if r.status == "entered-in-error":
        reading.withdraw(where, "entered-in-error")
        return
    details = ["not done" if r.status == "not-done" else (r.status or "")]
    if r.primarySource is False:  # recorded from the patient's word or another record
        details.append("as reported")
    when = r.occurrenceString or (
        r.occurrenceDateTime if isinstance(r.occurrenceDateTime, str) else None
    )
    if when:  # "in childhood", "1998-05"
        details.append(f"given {when}")
    if r.lotNumber:
        details.append(f"lot {r.lotNumber}")
    day = reading.day(r.occurrenceDateTime)
    _add_record(reading, where, (r.patient, "patient"), day, "immunisation", r.vaccineCode, details)


def _observation(reading: _Reading, where: Where, r: Observation) -> None:
    if r.status in ("entered-in-error", "cancelled"):
        reading.withdraw(where, r.status)
        return
    day = reading.day(
        r.effectiveDateTime,
        r.effectiveInstant,
        r.effectivePeriod and r.effectivePeriod.start,
        r.issued,
    )
    parts: list[measures.Part] = []
    codes: list[str | None] = []
    details: list[str] = []
    own = _part(None, r.valueQuantity, r.valueInteger)
    if own is not None:
        parts.append(own)
        codes.append(_code(r.code))
    else:
        details.append(_other_value(r))
    for component in r.component or []:
        label = _words(component.code)
        part = _part(label, component.valueQuantity, component.valueInteger)
        if part is not None:
            parts.append(part)
            codes.append(_code(component.code))
        elif text := _other_value(component):
            details.append(f"{label}: {text}" if label else text)
    if not parts and not any(details):
        details = [_words(r.dataAbsentReason) or r.status or ""]
    measurement = measures.measurement_json(parts, codes)
    _add_record(reading, where, (r.subject, "subject"), day, "result", r.code, details, measurement)


def _part(label: str | None, q: Quantity | None, integer: int | None) -> measures.Part | None:
    if q is not None and q.value is not None:
        value = measures.rounded(Decimal(q.value), q.code or q.unit)
        unit = measures.unit_text(q.code, q.unit, q.system)
        return measures.Part(label, q.comparator or "", value, unit)
    if integer is not None:
        return measures.Part(label, "", Decimal(integer), "")
    return None


def _other_value(r: Any) -> str:
    """An observation's (or component's) value that is not a number, in words."""
    if r.valueCodeableConcept is not None:
        return _words(r.valueCodeableConcept)
    if r.valueString:
        return str(r.valueString)
    if r.valueBoolean is not None:
        return "yes" if r.valueBoolean else "no"
    if r.dataAbsentReason is not None:
        return _words(r.dataAbsentReason)
    return ""


def _allergy(reading: _Reading, where: Where, r: AllergyIntolerance) -> None:
    if _code(r.verificationStatus) == "entered-in-error":
        reading.withdraw(where, "entered-in-error")
        return
    day = reading.day(r.recordedDate, r.onsetDateTime, r.onsetPeriod and r.onsetPeriod.start)
    details = [f"{r.criticality} criticality" if r.criticality else ""]
    for reaction in r.reaction or []:
        details.extend(_words(m) for m in reaction.manifestation or [])
    _add_record(reading, where, (r.patient, "patient"), day, "allergy", r.code, details)


def _add_record(
    reading: _Reading,
    where: Where,
    patient: tuple[Any, str],  # the reference, and the field it is in
    day: dt.date | None,
    kind: str,
    code: CodeableConcept | None,
    details: list[str],
    measurement: str | None = None,
) -> None:
    assert where.label is not None
    title = _words(code)
    if not title:
        raise _Bad("code has no text or display to show as the title")
    text = _sentence(_short(", ".join(d for d in details if d), DETAILS_MAX))
    reference, what = patient
    row = RecordRow(
        where,
        where.label,
        _reference(reference),
        day,
        kind,
        _short(title, TITLE_MAX),
        text,
        measurement,
    )
    reading.pending.append((row, what))


_READERS: dict[str, Callable[[_Reading, Where, Any], None]] = {
    "Patient": _patient,
    "Practitioner": _practitioner,
    "Location": _location,
    "Appointment": _appointment,
    "Invoice": _invoice,
    "Condition": _condition,
    "Immunization": _immunization,
    "Observation": _observation,
    "AllergyIntolerance": _allergy,
}


def _reference(reference: Any) -> str:
    """The raw reference, resolved once the whole bundle is read ("" for none)."""
    return (reference.reference or "") if reference is not None else ""


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


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:]


def _short(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


# --- Writing ---------------------------------------------------------------------------


async def import_bundle(
    db: Database, data: object, tz: dt.tzinfo, *, strict: bool = False
) -> ImportSummary:
    """Read, then write everything in one transaction (see the module's docstring)."""
    return await write_plan(db, parse_bundle(data, tz, strict=strict), strict=strict)


async def write_plan(db: Database, plan: Plan, *, strict: bool = False) -> ImportSummary:
    """Raises FhirImportError, and writes nothing, when nothing in the bundle could be
    imported (or, if strict, at the first entry that could not)."""
    if not (plan.patients or plan.rows or plan.withdrawn):
        raise FhirImportError(_nothing(plan.skipped), skipped=tuple(plan.skipped))
    async with db.transaction() as conn:
        summary = await _Writer(conn, plan, strict).run()
        if not any(summary.total(k) for k in _KINDS) and not plan.withdrawn:
            raise FhirImportError(_nothing(summary.skipped), skipped=summary.skipped)  # rolls back
        await audit.record(
            conn,
            Action.FHIR_IMPORTED,
            detail=f"p{summary.patients} a{summary.appointments} i{summary.invoices}"
            f" r{summary.records} x{summary.removed}",
        )
    return summary


def _nothing(skipped: Sequence[Skipped]) -> str:
    why = f"{len(skipped)} skipped" if skipped else "no entry the portal reads"
    return f"nothing to import ({why})"


class _Writer:
    def __init__(self, conn: Writes, plan: Plan, strict: bool) -> None:
        self.conn = conn
        self.plan = plan
        self.strict = strict
        self.counts: defaultdict[str, Counter[Outcome]] = defaultdict(Counter)
        self.skipped = list(plan.skipped)
        self.skipped_labels = dict(plan.skipped_labels)
        self.listed = {s.where.index for s in plan.skipped}
        # Patients an earlier import brought in: what this one adds for them is news (the
        # import that first brings a patient and their history tells nobody).
        self.known: set[int] = set()
        self.new_items: list[tuple[int, Item, int]] = []

    async def run(self) -> ImportSummary:
        ids: dict[str, int] = {}
        for p in self.plan.patients:
            try:
                ids[p.fhir_id], outcome, known = await _upsert_patient(self.conn, p)
            except _Bad as bad:
                self._skip(p.where, str(bad))
                continue
            self.counts["patient"][outcome] += 1
            if known:
                self.known.add(ids[p.fhir_id])
        copies: defaultdict[str, set[str]] = defaultdict(set)  # appointment -> its rows
        for row in self.plan.rows:
            patient_id = ids.get(row.patient_ref)
            if patient_id is None:
                patient_id = await self._patient_before(row)
                if patient_id is None:
                    continue
                ids[row.patient_ref] = patient_id
                self.known.add(patient_id)
            kind, outcome = await _sync(self.conn, patient_id, row)
            self.counts[kind][outcome] += 1
            if outcome == "new" and patient_id in self.known:
                await self._news(patient_id, row)
            if isinstance(row, AppointmentRow) and row.where.label:
                copies[row.where.label].add(row.fhir_id)
        removed = 0
        for label, kept in copies.items():
            removed += await portal.forget_appointment_copies(self.conn, label, kept)
        for fhir_id in self.plan.withdrawn:
            removed += await portal.forget_fhir(self.conn, fhir_id)
        await tell_new_items(self.conn, self.new_items)
        return ImportSummary(
            counts={k: dict(v) for k, v in self.counts.items()},
            removed=removed,
            left_out=tuple(sorted(self.plan.left_out.items())),
            skipped=tuple(sorted(self.skipped, key=lambda s: s.where.index)),
        )

    async def _news(self, patient_id: int, row: Row) -> None:
        """A new invoice or clinical record for a patient imported before: noted, to be
        told once the whole bundle is written."""
        if isinstance(row, AppointmentRow):
            return  # reminders tell of appointments
        item = Item.INVOICE if isinstance(row, InvoiceRow) else Item.RECORD
        item_id = await reminders.item_id(self.conn, item.table, row.fhir_id)
        if item_id is not None:
            self.new_items.append((patient_id, item, item_id))

    async def _patient_before(self, row: Row) -> int | None:
        """The patient a row belongs to, imported before this bundle; None if skipped."""
        ref = row.patient_ref
        if ref in self.skipped_labels:
            self._skip(row.where, f"its patient {ref} was skipped")
            return None
        found = await portal.patient_by_fhir_id(self.conn, ref)
        if found is None:
            self._skip(
                row.where,
                f"unknown patient reference {ref} (not in this bundle nor imported before)",
            )
            return None
        return found.id

    def _skip(self, where: Where, reason: str) -> None:
        if self.strict:
            raise FhirImportError(reason, where.index, where.name())
        if where.label:
            self.skipped_labels.setdefault(where.label, reason)
        if where.index not in self.listed:  # an appointment's copies: listed once
            self.listed.add(where.index)
            self.skipped.append(Skipped(where, reason))


async def _sync(conn: Writes, patient_id: int, row: Row) -> tuple[str, Outcome]:
    if isinstance(row, AppointmentRow):
        # A Confirm or Cancel made in the bot stands unless the practice changed its record
        # after it; whoever was reminded of an appointment that moved is told.
        before = await reminders.appointment_before_import(conn, row.fhir_id)
        status = await appointment_changes.status_to_import(
            conn, before, row.status, row.source_updated_at
        )
        outcome = await portal.sync_appointment(
            conn,
            row.fhir_id,
            patient_id,
            row.starts_at,
            row.ends_at,
            row.practitioner,
            row.location,
            status,
        )
        await tell_if_moved(conn, before, row.starts_at, status)
        return "appointment", outcome
    if isinstance(row, InvoiceRow):
        outcome = await portal.sync_invoice(
            conn,
            row.fhir_id,
            patient_id,
            row.number,
            row.issued_on,
            row.amount_minor,
            row.currency,
            row.paid,
        )
        return "invoice", outcome
    outcome = await portal.sync_record(
        conn,
        row.fhir_id,
        patient_id,
        row.recorded_on,
        row.kind,
        row.title,
        row.details,
        row.measurement,
    )
    return "clinical record", outcome


async def _upsert_patient(conn: Writes, p: PatientRow) -> tuple[int, Outcome, bool]:
    """The patient imported before under this id; else the one who has this email (the
    practice invited them by hand before the import); else a new patient. The bool: they
    were imported before (under this id)."""
    how = "updated"
    patient = await portal.patient_by_fhir_id(conn, p.fhir_id)
    holder = await patients.by_email(conn, p.email) if p.email else None
    if patient is None and holder is not None:
        linked = await portal.fhir_id_of_patient(conn, holder.id)
        if linked is not None:
            raise _Bad(f"its email belongs to the patient imported as {linked}")
        patient, how = holder, "linked"
    elif holder is not None and patient is not None and holder.id != patient.id:
        raise _Bad("its email belongs to another patient")
    if patient is None:
        patient, how = await patients.create(conn, p.full_name, p.date_of_birth, p.email), "created"
    changed = await portal.update_patient_from_source(
        conn,
        patient.id,
        fhir_id=p.fhir_id,
        full_name=p.full_name,
        date_of_birth=p.date_of_birth,
        email=p.email,
        deceased=p.deceased,
        deceased_on=p.deceased_on,
    )
    if p.email and (how == "created" or (patient.email or "").lower() != p.email.lower()):
        # Requests sent to this address before anyone had it now reach this patient.
        await grants.attach_email_requests(conn, patient.id, p.email)
    await audit.record(conn, Action.PATIENT_IMPORTED, subject_patient_id=patient.id, detail=how)
    outcome: Outcome = "new" if how == "created" else "updated" if changed else "unchanged"
    return patient.id, outcome, how == "updated"
