"""Importing FHIR R4 Bundles: as an operator runs it, and the mapping rules one by one.

The bundles in tests/data/fhir are synthetic: nobody in them is a real person.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import sqlite3
import zoneinfo
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from babel import Locale

from bot import fhir, invitations, measures
from bot.fhir import FhirImportError
from storage import Database, patients, portal
from tests.test_cli import run_cli

DATA = Path(__file__).resolve().parent / "data" / "fhir"
SYDNEY = zoneinfo.ZoneInfo("Australia/Sydney")
EN_AU = Locale.parse("en_AU")
TABLES = ("patients", "appointments", "invoices", "clinical_records", "audit_events")


def _counts(db: Path) -> dict[str, int]:
    with sqlite3.connect(db) as conn:
        return {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in TABLES}


def _nothing_written(db: Path) -> bool:
    """The file is read before the database is opened: a refused file may not create it."""
    return not db.exists() or _counts(db) == dict.fromkeys(TABLES, 0)


def _rows(db: Path, sql: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(db) as conn:
        return conn.execute(sql).fetchall()


def _bundle(name: str) -> dict[str, Any]:
    data = fhir.load_bundle(DATA / name)
    assert isinstance(data, dict)
    return data


def _resource(bundle: dict[str, Any], label: str) -> dict[str, Any]:
    kind, rid = label.split("/")
    for entry in bundle["entry"]:
        r = entry["resource"]
        if r["resourceType"] == kind and r["id"] == rid:
            return r
    raise KeyError(label)


def _write(path: Path, bundle: dict[str, Any]) -> Path:
    path.write_text(json.dumps(bundle), encoding="utf-8")
    return path


# --- Through the command line ----------------------------------------------------------


def test_a_valid_bundle_is_imported(tmp_path: Path) -> None:
    db = tmp_path / "p.db"
    result = run_cli(
        "import-fhir", str(DATA / "valid_bundle.json"), env={"PORTAL_DB_PATH": str(db)}
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == (
        "imported 2 patients, 5 appointments, 2 invoices, 6 clinical records (all new); "
        "left out 1 (Practitioner)"
    )
    assert result.stderr == ""
    people = dict(_rows(db, "SELECT fhir_id, full_name || '|' || date_of_birth FROM patients"))
    assert people == {
        "Patient/pat-1": "Avery Testcase|1980-06-15",
        "Patient/pat-2": "Jordan Sample|2012-02-29",
    }
    appointments = _rows(
        db,
        "SELECT a.fhir_id, p.fhir_id, a.status, a.starts_at, a.ends_at, a.practitioner,"
        " a.location FROM appointments a JOIN patients p ON p.id = a.patient_id ORDER BY a.fhir_id",
    )
    start = int(
        dt.datetime(2031, 3, 4, 9, 30, tzinfo=dt.timezone(dt.timedelta(hours=11))).timestamp()
    )
    assert appointments[0] == (
        "Appointment/appt-1",
        "Patient/pat-1",  # referenced by the entry's urn:uuid fullUrl
        "booked",
        start,
        start + 15 * 60,
        "Dr Quinn Placeholder",
        "Consult Room 2",
    )
    # fulfilled -> confirmed, noshow -> cancelled, pending -> booked, checked-in -> confirmed;
    # a practitioner without a display is named from the bundle's Practitioner resource.
    assert [(a[0], a[2], a[5], a[6]) for a in appointments[1:]] == [
        ("Appointment/appt-2", "confirmed", "Dr Quinn Placeholder", None),
        ("Appointment/appt-3", "cancelled", None, None),
        ("Appointment/appt-4", "booked", None, "Telehealth"),
        ("Appointment/appt-5", "confirmed", None, None),
    ]
    assert appointments[1][4] - appointments[1][3] == 30 * 60  # from minutesDuration
    assert _rows(
        db, "SELECT number, issued_on, amount_minor, currency, paid FROM invoices ORDER BY number"
    ) == [("INV-0001", "2024-05-01", 8800, "AUD", 1), ("INV-0002", "2024-08-20", 4550, "AUD", 0)]
    records = [
        (*row[:4], row[4] or measures.render(row[5], EN_AU))
        for row in _rows(
            db,
            "SELECT fhir_id, recorded_on, kind, title, details, measurement"
            " FROM clinical_records ORDER BY id",
        )
    ]
    assert records == [
        ("Condition/cond-1", "2023-11-02", "condition", "Synthetic test condition", "Active"),
        (
            "Immunization/imm-1",
            "2024-04-10",
            "immunisation",
            "Influenza vaccine",
            "Completed, lot LOT-TEST-1",
        ),
        # 23:30 UTC on 1 May is 2 May at the practice in Sydney.
        ("Observation/obs-1", "2024-05-02", "result", "Glucose (synthetic)", "5.4 mmol/L"),
        # 38.20 in the source: weights are read to 0.1 kg.
        ("Observation/obs-2", "2024-08-20", "result", "Body weight (synthetic)", "38.2 kg"),
        (
            "AllergyIntolerance/alg-1",
            "2022-01-15",
            "allergy",
            "Synthetic allergen",
            "High criticality, Hives",
        ),
        ("Immunization/imm-2", "2024-02-01", "immunisation", "Test vaccine B", "Not done"),
    ]


def test_strict_a_bad_entry_aborts_the_whole_file(tmp_path: Path) -> None:
    db = tmp_path / "p.db"
    result = run_cli(
        "import-fhir", "--strict", str(DATA / "bad_bundle.json"), env={"PORTAL_DB_PATH": str(db)}
    )
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        "error: entry 3 (Observation/obs-2): valueQuantity.value:"
    ), lines
    assert "five point four" not in result.stderr  # what was typed stays out of the line
    assert result.stdout == ""
    assert _nothing_written(db)


def test_strict_an_unknown_patient_reference_names_the_entry_and_undoes_the_rest(
    tmp_path: Path,
) -> None:
    db = tmp_path / "p.db"
    env = {"PORTAL_DB_PATH": str(db)}
    result = run_cli("import-fhir", "--strict", str(DATA / "unknown_patient.json"), env=env)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "error: entry 3 (Appointment/appt-8): unknown patient reference Patient/nobody"
        " (not in this bundle nor imported before)"
    ]
    # Entries 0-2 were written before entry 3 failed; the transaction took them back.
    assert _nothing_written(db)


def test_importing_again_updates_instead_of_duplicating(tmp_path: Path) -> None:
    db = tmp_path / "p.db"
    env = {"PORTAL_DB_PATH": str(db)}
    first = run_cli("import-fhir", str(DATA / "valid_bundle.json"), env=env)
    assert first.returncode == 0, first.stderr
    before = _counts(db)
    changed = json.loads((DATA / "valid_bundle.json").read_text(encoding="utf-8"))
    _resource(changed, "Appointment/appt-1")["status"] = "cancelled"
    _resource(changed, "Invoice/inv-2")["status"] = "balanced"
    _resource(changed, "Observation/obs-1")["valueQuantity"]["value"] = 6.1
    again = run_cli("import-fhir", str(_write(tmp_path / "changed.json", changed)), env=env)
    assert again.returncode == 0, again.stderr
    after = _counts(db)
    # Same rows; only the audit log grows (one event per patient and one for the import).
    assert {t: after[t] for t in TABLES[:-1]} == {t: before[t] for t in TABLES[:-1]}
    assert after["audit_events"] == before["audit_events"] + 3
    assert _rows(db, "SELECT status FROM appointments WHERE fhir_id = 'Appointment/appt-1'") == [
        ("cancelled",)
    ]
    assert _rows(db, "SELECT paid FROM invoices WHERE fhir_id = 'Invoice/inv-2'") == [(1,)]
    (measured,) = _rows(
        db, "SELECT measurement FROM clinical_records WHERE fhir_id = 'Observation/obs-1'"
    )
    assert measures.render(measured[0], EN_AU) == "6.1 mmol/L"


def test_a_missing_file_or_broken_json_is_one_line(tmp_path: Path) -> None:
    env = {"PORTAL_DB_PATH": str(tmp_path / "p.db")}
    missing = run_cli("import-fhir", str(tmp_path / "nope.json"), env=env)
    assert missing.returncode == 2 and missing.stderr.startswith("error: cannot read")
    broken = tmp_path / "broken.json"
    broken.write_text('{"resourceType": "Bundle",\n "entry": [', encoding="utf-8")
    result = run_cli("import-fhir", str(broken), env=env)
    assert result.returncode == 1
    assert (
        len(result.stderr.strip().splitlines()) == 1 and "line 2: not valid JSON" in result.stderr
    )
    assert "import-fhir" in run_cli("--help").stdout


# --- The mapping, in process -----------------------------------------------------------


def _one(resource: dict[str, Any], *more: dict[str, Any]) -> dict[str, Any]:
    patient = {
        "resourceType": "Patient",
        "id": "p",
        "name": [{"text": "Test Person"}],
        "birthDate": "1990-01-01",
    }
    entries = [patient, resource, *more]
    return {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"resource": r} for r in entries],
    }


def _invoice(value: str, currency: str, status: str = "issued") -> dict[str, Any]:
    return {
        "resourceType": "Invoice",
        "id": "i",
        "status": status,
        "identifier": [{"value": "N-1"}],
        "subject": {"reference": "Patient/p"},
        "date": "2024-01-01",
        "totalGross": {"value": Decimal(value), "currency": currency},
    }


@pytest.mark.parametrize(
    ("value", "currency", "minor"),
    [("88.00", "AUD", 8800), ("0.10", "AUD", 10), ("1200", "JPY", 1200), ("1.234", "KWD", 1234)],
)
def test_amounts_use_the_currency_precision(value: str, currency: str, minor: int) -> None:
    plan = fhir.parse_bundle(_one(_invoice(value, currency)), SYDNEY)
    (row,) = plan.rows
    assert isinstance(row, fhir.InvoiceRow) and row.amount_minor == minor


@pytest.mark.parametrize(
    ("resource", "message"),
    [
        (_invoice("12.345", "AUD"), "more than 2 decimals"),
        (_invoice("10", "ZZZ"), "not an ISO 4217 code"),
        (
            {**_invoice("10", "AUD"), "subject": {"reference": "Group/g"}},
            "must reference a Patient",
        ),
        ({**_invoice("10", "AUD"), "identifier": []}, "no identifier"),
        ({**_invoice("10", "AUD"), "date": "2024-05"}, "the date is not a full date"),
        (
            {
                "resourceType": "Appointment",
                "id": "a",
                "status": "booked",
                "participant": [{"actor": {"reference": "Patient/p"}, "status": "accepted"}],
            },
            "needs start and end",
        ),
        (
            {
                "resourceType": "Appointment",
                "id": "a",
                "status": "waitlist",
                "start": "2031-01-01T09:00:00Z",
                "end": "2031-01-01T09:10:00Z",
                "participant": [{"actor": {"reference": "Patient/p"}, "status": "accepted"}],
            },
            "status 'waitlist'",
        ),
        ({"resourceType": "Nonsense", "id": "n"}, "unknown resourceType 'Nonsense'"),
        ({"resourceType": "Patient", "name": [{"text": "No Id"}]}, "has no id"),
        ({"resourceType": "Patient", "id": "n", "name": [{"given": [" "]}]}, "no usable name"),
        ({"resourceType": "Patient", "id": "p"}, "twice (also entry 0)"),
    ],
)
def test_entries_the_portal_cannot_show_are_skipped_or_refused_by_index(
    resource: dict[str, Any], message: str
) -> None:
    plan = fhir.parse_bundle(_one(resource), SYDNEY)
    (skipped,) = plan.skipped
    assert skipped.where.index == 1 and message in skipped.reason, skipped
    assert [p.fhir_id for p in plan.patients] == ["Patient/p"] and plan.rows == []
    with pytest.raises(FhirImportError) as caught:
        fhir.parse_bundle(_one(resource), SYDNEY, strict=True)
    assert str(caught.value).startswith("entry 1") and message in str(caught.value)


def test_error_lines_never_repeat_what_was_in_the_record() -> None:
    bundle = _one({"resourceType": "Patient", "id": "q", "birthDate": "1984-13-40"})
    with pytest.raises(FhirImportError) as caught:
        fhir.parse_bundle(bundle, SYDNEY, strict=True)
    assert str(caught.value).startswith("entry 1 (Patient/q): birthDate:")
    assert "1984" not in fhir.parse_bundle(bundle, SYDNEY).skipped[0].line()
    assert "1984" not in str(caught.value)


def test_not_a_bundle() -> None:
    with pytest.raises(FhirImportError, match="not a FHIR Bundle"):
        fhir.parse_bundle({"resourceType": "Patient", "id": "p"}, SYDNEY)
    with pytest.raises(FhirImportError, match="not a FHIR Bundle"):
        fhir.parse_bundle([1, 2], SYDNEY)


async def test_a_patient_invited_by_hand_is_linked_by_email(db: Database) -> None:
    invited = await invitations.create_invite(
        db,
        invitations.InviteRequest("Avery T.", dt.date(1980, 6, 15), "Avery.Testcase@example.org"),
        14,
    )
    summary = await fhir.import_bundle(db, _bundle("valid_bundle.json"), SYDNEY)
    assert summary.patients == 2
    async with db.read() as conn:
        linked = await portal.patient_by_fhir_id(conn, "Patient/pat-1")
        page = await portal.records_page(conn, invited.patient.id, 0, 10)
    assert linked is not None and linked.id == invited.patient.id
    assert linked.full_name == "Avery Testcase"  # the practice's system has the final say
    assert {r.fhir_id for r in page} == {
        "Condition/cond-1",
        "Observation/obs-1",
        "Immunization/imm-2",
    }


async def test_references_to_patients_imported_before_resolve(db: Database) -> None:
    await fhir.import_bundle(db, _bundle("valid_bundle.json"), SYDNEY)
    later = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {"resource": _invoice("20", "AUD") | {"subject": {"reference": "Patient/pat-2"}}}
        ],
    }
    summary = await fhir.import_bundle(db, later, SYDNEY)
    assert summary.invoices == 1 and summary.patients == 0
    async with db.read() as conn:
        pat2 = await portal.patient_by_fhir_id(conn, "Patient/pat-2")
        assert pat2 is not None
        numbers = [i.number for i in await portal.invoices_page(conn, pat2.id, 0, 10)]
    assert numbers == ["INV-0002", "N-1"]


async def test_withdrawn_resources_are_removed_on_the_next_import(db: Database) -> None:
    bundle = _bundle("valid_bundle.json")
    await fhir.import_bundle(db, bundle, SYDNEY)
    withdrawn = copy.deepcopy(bundle)
    _resource(withdrawn, "Observation/obs-2")["status"] = "entered-in-error"
    _resource(withdrawn, "Invoice/inv-2")["status"] = "cancelled"
    summary = await fhir.import_bundle(db, withdrawn, SYDNEY)
    assert summary.line() == (
        "imported 2 patients, 5 appointments, 1 invoice, 5 clinical records (all unchanged); "
        "removed 2 withdrawn at the source; "
        "left out 3 (Practitioner, cancelled Invoice, entered-in-error Observation)"
    )
    async with db.read() as conn:
        pat2 = await portal.patient_by_fhir_id(conn, "Patient/pat-2")
        assert pat2 is not None
        assert await portal.invoices_page(conn, pat2.id, 0, 10) == []
        titles = [r.title for r in await portal.records_page(conn, pat2.id, 0, 10)]
    assert titles == ["Influenza vaccine", "Synthetic allergen"]


async def test_an_email_of_another_patient_is_refused(db: Database) -> None:
    async with db.transaction() as conn:
        await patients.create(conn, "Someone Else", dt.date(1970, 1, 1), "taken@example.org")
    await fhir.import_bundle(db, _bundle("valid_bundle.json"), SYDNEY)
    bundle = _bundle("valid_bundle.json")
    _resource(bundle, "Patient/pat-1")["telecom"] = [
        {"system": "email", "value": "taken@example.org"}
    ]
    with pytest.raises(FhirImportError, match=r"^entry 0 \(Patient/pat-1\): its email belongs"):
        await fhir.import_bundle(db, bundle, SYDNEY, strict=True)
    summary = await fhir.import_bundle(db, bundle, SYDNEY)
    assert [s.line() for s in summary.skipped] == [
        "entry 0 (Patient/pat-1): its email belongs to another patient",
        "entry 3 (Appointment/appt-1): its patient Patient/pat-1 was skipped",
        "entry 4 (Appointment/appt-2): its patient Patient/pat-1 was skipped",
        "entry 8 (Invoice/inv-1): its patient Patient/pat-1 was skipped",
        "entry 10 (Condition/cond-1): its patient Patient/pat-1 was skipped",
        "entry 12 (Observation/obs-1): its patient Patient/pat-1 was skipped",
        "entry 15 (Immunization/imm-2): its patient Patient/pat-1 was skipped",
    ]
    assert summary.patients == 1 and summary.line().endswith("; 7 skipped")


def test_what_cannot_be_listed_is_skipped_and_counted() -> None:
    untimed = {
        "resourceType": "Appointment",
        "id": "a",
        "status": "proposed",
        "participant": [{"actor": {"reference": "Patient/p"}, "status": "needs-action"}],
    }
    plan = fhir.parse_bundle(
        _one(untimed, {"resourceType": "Organization", "name": "No id needed"}), SYDNEY
    )
    assert plan.rows == [] and len(plan.patients) == 1
    assert dict(plan.left_out) == {"Appointment without a time": 1, "Organization": 1}
    assert plan.skipped == []
