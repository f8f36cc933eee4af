"""The practice hears back: a Confirm or Cancel made in the bot (from the appointments view
or a reminder) is told to the practitioner, stands across re-imports unless the practice's
own record changed after it, and `python -m bot export-changes` writes it as a FHIR R4
Bundle for the practice's system."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

from fhir.resources.R4B.bundle import Bundle

from bot import fhir
from bot.appointment_changes import export
from storage import Database
from storage.clock import FixedClock
from tests.botapi import BotAPIServer
from tests.helpers import make_practitioner, signed_in
from tests.test_cli import run_cli
from tests.test_reminders import (
    CANCEL,
    SYDNEY,
    App,
    at,
    fixed,  # noqa: F401  (the fixture)
    status_of,
    sweep,
    ts,
)

EMAIL = "ann@example.com"


def _bundle(v1_status: str = "booked", updated: dict[str, dt.datetime] | None = None) -> Any:
    """Ann, Dr Rao, and two appointments with him: v-1 on 4 June at 14:00, v-2 on 5 June."""
    updated = updated or {}

    def visit(aid: str, start: dt.datetime, status: str) -> dict[str, Any]:
        r: dict[str, Any] = {
            "resourceType": "Appointment",
            "id": aid,
            "status": status,
            "start": start.isoformat(),
            "end": (start + dt.timedelta(minutes=30)).isoformat(),
            "participant": [
                {"actor": {"reference": "Patient/ann"}, "status": "accepted"},
                {"actor": {"reference": "Practitioner/rao"}, "status": "accepted"},
            ],
        }
        if aid in updated:
            r["meta"] = {"lastUpdated": updated[aid].isoformat()}
        return r

    return {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {
                "resource": {
                    "resourceType": "Patient",
                    "id": "ann",
                    "name": [{"given": ["Ann"], "family": "Lee"}],
                    "birthDate": "1985-02-03",
                    "telecom": [{"system": "email", "value": EMAIL}],
                }
            },
            {
                "resource": {
                    "resourceType": "Practitioner",
                    "id": "rao",
                    "name": [{"prefix": ["Dr"], "family": "Rao"}],
                }
            },
            {"resource": visit("v-1", at(4, 14), v1_status)},
            {"resource": visit("v-2", at(5, 10), "booked")},
        ],
    }


async def _ids(db: Database) -> tuple[int, int]:
    async with db.read() as conn:
        rows = await conn.execute_fetchall(
            "SELECT id FROM appointments WHERE fhir_id IN ('Appointment/v-1', 'Appointment/v-2')"
            " ORDER BY fhir_id"
        )
    v1, v2 = (row[0] for row in rows)
    return v1, v2


async def test_changes_made_in_the_bot_reach_the_practice_and_survive_re_imports(
    fixed: FixedClock,  # noqa: F811
    app: App,
    server: BotAPIServer,
    bot_db: Database,
    db_path: Path,
) -> None:
    fixed.set(at(3, 10))
    rao = server.user(500, "Rao")
    await make_practitioner(bot_db, 500, "Dr Rao")
    await rao.send("/start")
    ann = server.user(700, "Ann")
    await signed_in(bot_db, ann, "Ann Lee", email=EMAIL)
    await fhir.import_bundle(bot_db, _bundle(), SYDNEY)
    v1, v2 = await _ids(bot_db)

    # Confirmed from the appointments view…
    await ann.send("/appointments")
    await ann.tap("Confirm 4 Jun")
    told = await rao.wait_for("Attendance at Ann Lee's appointment on Tue 4 Jun 2030")
    assert "was confirmed in the patient portal" in told.text
    # …cancelled from a reminder.
    await sweep(app, fixed, at(4, 10, 30))
    reminder = await ann.wait_for("Reminder: you have an appointment on Wed 5 Jun 2030")
    fixed.set(at(4, 10, 40))
    await ann.tap(CANCEL, message=reminder)
    await ann.tap("Yes, cancel it", message=reminder)
    await rao.wait_for("Ann Lee's appointment on Wed 5 Jun 2030 · 10:00")
    assert "was cancelled in the patient portal" in rao.last.text

    # The same bundle again (no lastUpdated): nothing says the practice saw the changes.
    await fhir.import_bundle(bot_db, _bundle(), SYDNEY)
    assert (await status_of(bot_db, v1), await status_of(bot_db, v2)) == ("confirmed", "cancelled")

    bundle = (await export(bot_db, ts(at(3, 0)))).bundle
    Bundle.model_validate(bundle)  # valid FHIR R4(B)
    assert bundle["type"] == "batch"
    assert [(e["request"]["method"], e["request"]["url"]) for e in bundle["entry"]] == [
        ("PATCH", "Appointment/v-1"),
        ("PATCH", "Appointment/v-2"),
    ]
    confirm, cancel = (e["resource"]["parameter"][0]["part"] for e in bundle["entry"])
    assert confirm[1:] == [
        {
            "name": "path",
            "valueString": "Appointment.participant.where(actor.reference = 'Patient/ann').status",
        },
        {"name": "value", "valueCode": "accepted"},
    ]
    assert cancel[1:] == [
        {"name": "path", "valueString": "Appointment.status"},
        {"name": "value", "valueCode": "cancelled"},
    ]
    later = await export(bot_db, ts(at(4, 10, 35)))
    assert [e["request"]["url"] for e in later.bundle["entry"]] == ["Appointment/v-2"]

    # The practice rebooked v-2 after the cancel (a newer lastUpdated): theirs stands, and
    # the export no longer carries the cancel. v-1's record is older than the confirm.
    await fhir.import_bundle(bot_db, _bundle(updated={"v-1": at(3, 9), "v-2": at(4, 11)}), SYDNEY)
    assert (await status_of(bot_db, v1), await status_of(bot_db, v2)) == ("confirmed", "booked")
    cli = run_cli(
        "export-changes", "--since", "2030-06-03T00:00", env={"PORTAL_DB_PATH": str(db_path)}
    )
    assert cli.returncode == 0, cli.stderr
    assert [e["request"]["url"] for e in json.loads(cli.stdout)["entry"]] == ["Appointment/v-1"]
    bad = run_cli("export-changes", "--since", "yesterday", env={"PORTAL_DB_PATH": str(db_path)})
    assert (
        bad.returncode == 2
        and bad.stderr.startswith("error: --since ")
        and "is not an ISO date" in bad.stderr
    )


def test_several_patients_one_declines_and_unknown_ids_are_left_out() -> None:
    from bot.appointment_changes import _entry
    from storage.appointment_changes import Change, Exported

    def exported(status: str, fhir_id: str | None) -> Exported:
        change = Change(id=1, appointment_id=9, status=status, actor_patient_id=None, at=0)
        return Exported(change=change, appointment_fhir_id=fhir_id, patient_fhir_id="Patient/b")

    copy = _entry(exported("cancelled", "Appointment/a1#Patient/b"))
    assert copy is not None and copy["request"]["url"] == "Appointment/a1"
    assert copy["resource"]["parameter"][0]["part"][1:] == [
        {
            "name": "path",
            "valueString": "Appointment.participant.where(actor.reference = 'Patient/b').status",
        },
        {"name": "value", "valueCode": "declined"},
    ]
    assert _entry(exported("confirmed", "urn:uuid:1b3c")) is None  # no id to PATCH by
    assert _entry(exported("cancelled", None)) is None  # not from the practice's system
