"""The practice hears back: a Confirm or Cancel made in the bot (bot/access.py
act_on_appointment records it and tells the practitioner) stays across re-imports, and is
written out for the practice's system.

A later import does not undo it unless the practice's own record changed after it: the
source's meta.lastUpdated is newer than the change. Without a lastUpdated nothing says the
practice saw the change, so the bot's stands.

`python -m bot export-changes --since ISO` writes the standing changes as a FHIR R4 Bundle of
type "batch": one FHIRPath Patch (a Parameters resource, PATCH Appointment/<id>) per
appointment, so the practice's system takes the status and nothing else of its record is
overwritten. A cancel sets Appointment.status to cancelled (for an appointment with several
patients, that patient's participant.status to declined); a confirm sets the patient's
participant.status to accepted, which is how FHIR says a patient will come.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

from storage import Database, appointment_changes
from storage.appointment_changes import Exported
from storage.db import Writes, now

_APPOINTMENT = re.compile(r"^Appointment/([A-Za-z0-9.-]{1,64})$")


async def status_to_import(
    conn: Writes,
    before: tuple[int, int, str] | None,
    source_status: str,
    source_updated_at: int | None,
) -> str:
    """The status an import writes for an appointment stored before (id, start, status):
    the source's, unless the bot changed it since the practice last changed its record."""
    if before is None:
        return source_status
    change = await appointment_changes.standing(conn, before[0])
    if change is None:
        return source_status
    if source_updated_at is not None and source_updated_at > change.at:
        await appointment_changes.supersede(conn, before[0])
        return source_status
    return change.status


@dataclass(frozen=True)
class Export:
    bundle: dict[str, Any]
    skipped: list[str]  # changes the practice's system cannot be sent, and why


async def export(db: Database, since: int) -> Export:
    """The standing changes made since `since`, as a FHIR R4 batch Bundle."""
    async with db.read() as conn:
        changes = await appointment_changes.since(conn, since)
    entries: list[dict[str, Any]] = []
    skipped: list[str] = []
    for found in changes:
        entry = _entry(found)
        if entry is None:
            skipped.append(
                f"change {found.change.id} (appointment {found.change.appointment_id}): "
                "the appointment did not come from the practice's system"
            )
            continue
        entries.append(entry)
    bundle = {
        "resourceType": "Bundle",
        "type": "batch",
        "timestamp": _instant(now()),
        "entry": entries,
    }
    return Export(bundle, skipped)


def _entry(found: Exported) -> dict[str, Any] | None:
    fhir_id = found.appointment_fhir_id or ""
    own_id, _, copy_for = fhir_id.partition("#")  # a copy for one of several patients
    match = _APPOINTMENT.match(own_id)
    if match is None:
        return None
    patient = copy_for or found.patient_fhir_id
    change = found.change
    if change.status == "cancelled" and not copy_for:
        operation = _replace("Appointment.status", "cancelled")
    elif patient:
        participant = f"Appointment.participant.where(actor.reference = '{patient}').status"
        operation = _replace(
            participant, "declined" if change.status == "cancelled" else "accepted"
        )
    else:
        return None
    return {
        "resource": {"resourceType": "Parameters", "parameter": [operation]},
        "request": {"method": "PATCH", "url": f"Appointment/{match[1]}"},
    }


def _replace(path: str, code: str) -> dict[str, Any]:
    """One FHIRPath Patch operation: replace the value at `path` with a code."""
    return {
        "name": "operation",
        "part": [
            {"name": "type", "valueCode": "replace"},
            {"name": "path", "valueString": path},
            {"name": "value", "valueCode": code},
        ],
    }


def _instant(at: int) -> str:
    return dt.datetime.fromtimestamp(at, dt.UTC).isoformat(timespec="seconds")
