"""FHIR bundles shaped like real exports (issue #18): transaction bundles known by
urn:uuid fullUrls, nameless newborns, undated conditions, historical vaccines, shared
appointments, older FHIR versions, blood pressure panels, and importing twice.

Every bundle here is written for these tests; nobody in them is a real person.
"""

from __future__ import annotations

import json
import sqlite3
import zoneinfo
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from babel import Locale

from bot import fhir, measures
from storage import Database
from tests.botapi import BotAPIServer
from tests.helpers import make_invite, signed_in
from tests.test_cli import run_cli

SYDNEY = zoneinfo.ZoneInfo("Australia/Sydney")
UCUM = "http://unitsofmeasure.org"
LOINC = "http://loinc.org"


def _urn(n: int) -> str:
    return f"urn:uuid:5e0c1a2b-0000-4000-8000-{n:012d}"


def _rows(db: Path, sql: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(db) as conn:
        return conn.execute(sql).fetchall()


def _write(path: Path, bundle: dict[str, Any]) -> Path:
    path.write_text(json.dumps(bundle, default=str), encoding="utf-8")
    return path


def _quantity(value: object, code: str) -> dict[str, Any]:
    return {"value": value, "unit": code, "system": UCUM, "code": code}


def _observation(
    urn: int, patient: str, loinc: str, text: str, **value: Any
) -> tuple[str, dict[str, Any]]:
    return _urn(urn), {
        "resourceType": "Observation",
        "status": "final",
        "category": [{"coding": [{"code": "vital-signs"}]}],
        "code": {"coding": [{"system": LOINC, "code": loinc, "display": text}], "text": text},
        "subject": {"reference": patient},
        "effectiveDateTime": f"2026-03-0{urn % 9 + 1}T10:00:00+11:00",
        **value,
    }


def transaction(email: str = "sam.rivera@example.org", first: int = 1) -> dict[str, Any]:
    """A transaction bundle as Synthea and most servers' exports write it: no resource has
    an id, each entry is known by its urn:uuid fullUrl, and references point at those. Its
    "entry" comes before "resourceType": JSON objects have no order."""
    patient = _urn(first)
    entries = [
        (
            patient,
            {
                "resourceType": "Patient",
                "name": [{"use": "official", "family": "Rivera", "given": ["Sam"]}],
                "birthDate": "1990-04-02",
                "telecom": [{"system": "email", "value": email}],
                "deceasedBoolean": False,
            },
        ),
        _observation(
            first + 1,
            patient,
            "85354-9",
            "Blood Pressure",
            component=[
                {
                    "code": {"coding": [{"system": LOINC, "code": "8462-4"}], "text": "Diastolic"},
                    "valueQuantity": _quantity(80, "mm[Hg]"),
                },
                {
                    "code": {"coding": [{"system": LOINC, "code": "8480-6"}], "text": "Systolic"},
                    "valueQuantity": _quantity(120, "mm[Hg]"),
                },
            ],
        ),
        _observation(
            first + 2,
            patient,
            "8310-5",
            "Body temperature",
            valueQuantity=_quantity(Decimal("37.23"), "Cel"),
        ),
        _observation(
            first + 3,
            patient,
            "39156-5",
            "Body mass index",
            valueQuantity=_quantity(Decimal("26.48181027763049"), "kg/m2"),
        ),
        _observation(
            first + 4,
            patient,
            "72514-3",
            "Pain severity",
            valueQuantity=_quantity(Decimal("4.0"), "{score}"),
        ),
        (
            _urn(first + 5),
            {
                "resourceType": "Condition",
                "clinicalStatus": {"coding": [{"code": "active"}]},
                "code": {"text": "Asthma"},
                "subject": {"reference": patient},
                "onsetString": "childhood",
            },
        ),
    ]
    return {
        "entry": [
            {"fullUrl": url, "resource": r, "request": {"method": "POST", "url": r["resourceType"]}}
            for url, r in entries
        ],
        "resourceType": "Bundle",
        "type": "transaction",
    }


def odd_entries() -> dict[str, Any]:
    """What real exports carry that a tidy test bundle does not."""
    resources: list[dict[str, Any]] = [
        {
            "resourceType": "Patient",
            "id": "mum",
            "name": [{"text": "Jane Doe"}],
            "birthDate": "1988-07-09",
        },
        {  # a fetal record: no name yet, no date of birth
            "resourceType": "Patient",
            "id": "fetus",
            "name": [{"use": "official"}],
        },
        {
            "resourceType": "Observation",
            "id": "fetal-hr",
            "status": "final",
            "code": {"text": "Fetal heart rate"},
            "subject": {"reference": "Patient/fetus"},
            "effectiveDateTime": "2026-02-01",
            "valueQuantity": _quantity(140, "/min"),
        },
        {
            "resourceType": "Condition",
            "id": "asthma",
            "clinicalStatus": {"coding": [{"code": "active"}]},
            "code": {"text": "Asthma"},
            "subject": {"reference": "Patient/mum"},
            "onsetString": "childhood",
        },
        {  # STU3: clinicalStatus and verificationStatus were codes; no date at all
            "resourceType": "Condition",
            "id": "eczema",
            "clinicalStatus": "active",
            "verificationStatus": "confirmed",
            "code": {"text": "Eczema"},
            "subject": {"reference": "Patient/mum"},
        },
        {  # recorded from her word: a string date, not given here
            "resourceType": "Immunization",
            "id": "mmr",
            "status": "completed",
            "vaccineCode": {"text": "MMR"},
            "patient": {"reference": "Patient/mum"},
            "occurrenceString": "in childhood",
            "primarySource": False,
        },
        {
            "resourceType": "Appointment",
            "id": "joint",
            "status": "booked",
            "start": "2031-05-06T10:00:00+10:00",
            "end": "2031-05-06T10:45:00+10:00",
            "participant": [
                {"actor": {"reference": "Patient/mum"}, "status": "accepted"},
                {"actor": {"reference": "Patient/dad"}, "status": "accepted"},
                {"actor": {"display": "Dr Quinn", "type": "Practitioner"}, "status": "accepted"},
            ],
        },
        {
            "resourceType": "Patient",
            "id": "dad",
            "name": [{"given": ["John"], "family": "Doe"}],
            "deceasedDateTime": "2026-01-05T08:00:00+11:00",
        },
        {
            "resourceType": "Patient",
            "id": "gran",
            "name": [{"text": "Ada Doe"}],
            "deceasedBoolean": True,
        },
        {  # STU3 again: codes for statuses, assertedDate for recordedDate
            "resourceType": "AllergyIntolerance",
            "id": "peanut",
            "clinicalStatus": "active",
            "verificationStatus": "confirmed",
            "assertedDate": "2020-02-03",
            "criticality": "high",
            "code": {"text": "Peanut"},
            "patient": {"reference": "Patient/mum"},
        },
        {  # STU3: date and notGiven, not occurrenceDateTime
            "resourceType": "Immunization",
            "id": "tetanus",
            "status": "completed",
            "notGiven": False,
            "date": "2015-06-01",
            "vaccineCode": {"text": "Tetanus"},
            "patient": {"reference": "Patient/dad"},
            "primarySource": True,
        },
        {
            "resourceType": "Observation",
            "id": "typed",
            "status": "final",
            "code": {"text": "Glucose"},
            "subject": {"reference": "Patient/mum"},
            "effectiveDateTime": "2026-02-01",
            "valueQuantity": {"value": "five point four", "unit": "mmol/L"},
        },
    ]
    return {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"resource": r} for r in resources],
    }


def _import(path: Path, db: Path, *flags: str) -> Any:
    return run_cli("import-fhir", *flags, str(path), env={"PORTAL_DB_PATH": str(db)})


# --- Through the command line ----------------------------------------------------------


def test_a_transaction_bundle_is_known_by_its_full_urls(tmp_path: Path) -> None:
    db = tmp_path / "p.db"
    path = _write(tmp_path / "tx.json", transaction())
    first = _import(path, db)
    assert first.returncode == 0, first.stderr
    assert first.stderr == ""
    assert first.stdout.strip() == (
        "imported 1 patient, 0 appointments, 0 invoices, 5 clinical records (all new)"
    )
    assert _rows(db, "SELECT fhir_id, full_name FROM patients") == [(_urn(1), "Sam Rivera")]
    stored = _rows(db, "SELECT fhir_id, patient_id FROM clinical_records ORDER BY fhir_id")
    assert [f for f, _ in stored] == [_urn(n) for n in range(2, 7)]
    assert {p for _, p in stored} == {1}

    again = _import(path, db)
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip() == (
        "imported 1 patient, 0 appointments, 0 invoices, 5 clinical records (all unchanged)"
    )
    assert _rows(db, "SELECT count(*) FROM clinical_records") == [(5,)]


def test_odd_entries_are_imported_and_the_rest_skipped_and_listed(tmp_path: Path) -> None:
    db = tmp_path / "p.db"
    result = _import(_write(tmp_path / "odd.json", odd_entries()), db)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == (
        "imported 3 patients, 2 appointments, 0 invoices, 5 clinical records (all new); 3 skipped"
    )
    lines = result.stderr.strip().splitlines()
    assert lines[:2] == [
        "skipped entry 1 (Patient/fetus): has no usable name (a newborn or fetal record?)",
        "skipped entry 2 (Observation/fetal-hr): its patient Patient/fetus was skipped",
    ]
    assert lines[2].startswith("skipped entry 11 (Observation/typed): valueQuantity.value:")
    assert len(lines) == 3 and "five point four" not in result.stderr

    assert _rows(
        db, "SELECT fhir_id, full_name, deceased, deceased_on FROM patients ORDER BY id"
    ) == [
        ("Patient/mum", "Jane Doe", 0, None),
        ("Patient/dad", "John Doe", 1, "2026-01-05"),
        ("Patient/gran", "Ada Doe", 1, None),
    ]
    # One appointment, two patients: it is in each one's portal.
    assert _rows(
        db,
        "SELECT a.fhir_id, p.fhir_id, a.practitioner FROM appointments a"
        " JOIN patients p ON p.id = a.patient_id ORDER BY a.id",
    ) == [
        ("Appointment/joint", "Patient/mum", "Dr Quinn"),
        ("Appointment/joint#Patient/dad", "Patient/dad", "Dr Quinn"),
    ]
    assert _rows(
        db, "SELECT fhir_id, recorded_on, title, details FROM clinical_records ORDER BY id"
    ) == [
        ("Condition/asthma", None, "Asthma", "Active, onset childhood"),
        ("Condition/eczema", None, "Eczema", "Active"),
        ("Immunization/mmr", None, "MMR", "Completed, as reported, given in childhood"),
        ("AllergyIntolerance/peanut", "2020-02-03", "Peanut", "High criticality"),
        ("Immunization/tetanus", "2015-06-01", "Tetanus", "Completed"),
    ]


def test_strict_keeps_all_or_nothing(tmp_path: Path) -> None:
    db = tmp_path / "p.db"
    result = _import(_write(tmp_path / "odd.json", odd_entries()), db, "--strict")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "error: entry 1 (Patient/fetus): has no usable name (a newborn or fetal record?)"
    ]
    assert result.stdout == ""
    assert not db.exists() or _rows(db, "SELECT count(*) FROM patients") == [(0,)]


def test_a_file_with_nothing_to_import_fails_in_one_line(tmp_path: Path) -> None:
    db = tmp_path / "p.db"
    bundle = odd_entries()
    bundle["entry"] = bundle["entry"][1:3]  # the fetal record and its observation
    result = _import(_write(tmp_path / "fetal.json", bundle), db)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "skipped entry 0 (Patient/fetus): has no usable name (a newborn or fetal record?)",
        "skipped entry 1 (Observation/fetal-hr): its patient Patient/fetus was skipped",
        "error: nothing to import (2 skipped)",
    ]
    assert "Traceback" not in result.stderr and result.stdout == ""
    only = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"resource": {"resourceType": "Practitioner", "id": "p", "name": []}}],
    }
    result = _import(_write(tmp_path / "staff.json", only), db)
    assert result.returncode == 1
    assert result.stderr.strip() == "error: nothing to import (no entry the portal reads)"


def test_importing_again_says_what_was_new_and_what_was_updated(tmp_path: Path) -> None:
    db = tmp_path / "p.db"
    bundle = odd_entries()
    bundle["entry"] = [e for e in bundle["entry"] if e["resource"]["id"] not in ("typed",)]
    first = _import(_write(tmp_path / "a.json", bundle), db)
    assert first.returncode == 0, first.stderr
    assert "(all new)" in first.stdout

    entries = {e["resource"]["id"]: e["resource"] for e in bundle["entry"]}
    entries["asthma"]["onsetString"] = "early childhood"
    del entries["joint"]["participant"][1]  # dad no longer
    entries["gran"]["deceasedBoolean"] = False  # recorded in error at the source
    bundle["entry"].append(
        {
            "resource": {
                "resourceType": "Condition",
                "id": "hay-fever",
                "code": {"text": "Hay fever"},
                "subject": {"reference": "Patient/mum"},
                "recordedDate": "2026-04-01",
            }
        }
    )
    again = _import(_write(tmp_path / "b.json", bundle), db)
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip() == (
        "imported 3 patients, 1 appointment, 0 invoices, 6 clinical records "
        "(new: 1 clinical record; updated: 1 patient, 1 clinical record; "
        "unchanged: 2 patients, 1 appointment, 4 clinical records); "
        "removed 1 withdrawn at the source; 2 skipped"
    )
    assert _rows(db, "SELECT fhir_id FROM appointments") == [("Appointment/joint",)]
    assert _rows(db, "SELECT deceased FROM patients WHERE fhir_id = 'Patient/gran'") == [(0,)]
    assert _rows(db, "SELECT count(*) FROM clinical_records") == [(6,)]


def test_a_withdrawn_shared_appointment_leaves_every_portal(tmp_path: Path) -> None:
    db = tmp_path / "p.db"
    bundle = odd_entries()
    assert _import(_write(tmp_path / "a.json", bundle), db).returncode == 0
    for entry in bundle["entry"]:
        if entry["resource"]["id"] == "joint":
            entry["resource"]["status"] = "entered-in-error"
    again = _import(_write(tmp_path / "b.json", bundle), db)
    assert "removed 2 withdrawn at the source" in again.stdout, again.stdout
    assert _rows(db, "SELECT count(*) FROM appointments") == [(0,)]


def test_a_shared_appointment_stays_with_the_patient_who_was_not_skipped() -> None:
    bundle = odd_entries()
    joint = next(e["resource"] for e in bundle["entry"] if e["resource"]["id"] == "joint")
    joint["participant"][1]["actor"]["reference"] = "Patient/fetus"
    plan = fhir.parse_bundle(bundle, SYDNEY)
    appointments = [r for r in plan.rows if isinstance(r, fhir.AppointmentRow)]
    assert [(a.fhir_id, a.patient_ref) for a in appointments] == [
        ("Appointment/joint", "Patient/mum")
    ]


# --- In the bot: measurements as people read them --------------------------------------


async def test_blood_pressure_and_units_read_as_people_write_them(
    server: BotAPIServer, bot_db: Database
) -> None:
    sam = server.user(760, "Sam")
    await signed_in(bot_db, sam, "Sam Rivera", email="sam.rivera@example.org")
    lan = server.user(761, "Lan", language_code="vi")
    await lan.open_link(await make_invite(bot_db, "Lan Tran", email="lan.tran@example.org"))
    await lan.send("3/2/1985")
    assert "Chào mừng Lan" in lan.last.text, lan.transcript()
    await fhir.import_bundle(bot_db, transaction(), SYDNEY)
    await fhir.import_bundle(bot_db, transaction("lan.tran@example.org", first=101), SYDNEY)

    await sam.send("/records")
    text = sam.last.text
    assert "Blood Pressure" in text and "120/80 mmHg" in text, text
    assert "37.2 °C" in text and "26.5 kg/m²" in text, text
    assert "{score}" not in text and "26.48" not in text and "Cel" not in text, text
    assert "Asthma\nCondition · date not recorded\nActive, onset childhood" in text, text

    await lan.send("/records")
    assert "37,2 °C" in lan.last.text and "26,5 kg/m²" in lan.last.text, lan.last.text


# --- Units and precision ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "shown"),
    [
        ("Cel", "°C"),
        ("mm[Hg]", "mmHg"),
        ("{score}", ""),
        ("kg/m2", "kg/m²"),
        ("/min", "/min"),
        ("{beats}/min", "/min"),
        ("10*9/L", "×10⁹/L"),
        ("ug/L", "µg/L"),
        ("m[IU]/L", "mIU/L"),
        ("[lb_av]", "lb"),
        ("mmol/L", "mmol/L"),
    ],
)
def test_ucum_codes_read_as_people_write_them(code: str, shown: str) -> None:
    assert measures.unit_text(code, code, UCUM) == shown


@pytest.mark.parametrize(
    ("value", "code", "shown"),
    [
        ("26.48181027763049", "mmol/L", "26.5"),
        ("5.4", "mmol/L", "5.4"),
        ("37.23", "Cel", "37.2"),
        ("37", "Cel", "37"),  # never finer than the source wrote it
        ("38.20", "kg", "38.2"),
        ("120.0", "mm[Hg]", "120"),
        ("0.9534", "mg/dL", "0.95"),
        ("0.01234", "ng/mL", "0.012"),
        ("1.0153", "g/mL", "1.015"),
        ("4.0", "{score}", "4"),
        ("1234.5678", "10*9/L", "1,235"),
    ],
)
def test_numbers_at_the_precision_the_measurement_takes(value: str, code: str, shown: str) -> None:
    rounded = measures.rounded(Decimal(value), code)
    assert measures.number(rounded, Locale.parse("en_AU")) == shown
