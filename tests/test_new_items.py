"""New-item notices after an import, end to end: what an import adds for a patient it brought
in before is told to whoever may see it (an invoice to everyone with access, a result to
Clinical access only), naming whose and what kind, never the content. The import that
first brings a patient in tells nobody; a deceased patient's news goes to nobody; an
appointment the practice moves is told to whoever was reminded of it."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from typing import Any

from bot import fhir
from bot.callbacks import OpenNewItem
from bot.context import portal
from storage import Database, grants
from storage.clock import FixedClock
from storage.notifications import Item
from storage.vocabulary import EndReason, GrantStatus, Level, Role
from tests.botapi import BotAPIServer, SimUser
from tests.helpers import signed_in
from tests.test_reminders import (
    SYDNEY,
    App,
    at,
    fixed,  # noqa: F401  (the fixture)
    holder,
    patient_id,
    rows,
    settled,
    sweep,
    until,
)

ANN_EMAIL = "ann@example.com"


def _patient(
    pid: str, name: str, email: str | None = None, deceased: bool = False
) -> dict[str, Any]:
    given, family = name.split()
    r: dict[str, Any] = {
        "resourceType": "Patient",
        "id": pid,
        "name": [{"given": [given], "family": family}],
        "birthDate": "2024-05-03",  # a child in June 2030, under the policy's teen age
    }
    if email:
        r["telecom"] = [{"system": "email", "value": email}]
    if deceased:
        r["deceasedBoolean"] = True
    return r


def _invoice(iid: str, pid: str, number: str) -> dict[str, Any]:
    return {
        "resourceType": "Invoice",
        "id": iid,
        "status": "issued",
        "identifier": [{"value": number}],
        "subject": {"reference": f"Patient/{pid}"},
        "date": "2030-06-01",
        "totalGross": {"value": Decimal("120.50"), "currency": "AUD"},
    }


def _result(oid: str, pid: str, title: str) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": oid,
        "status": "final",
        "code": {"text": title},
        "subject": {"reference": f"Patient/{pid}"},
        "effectiveDateTime": "2030-06-01",
        "valueQuantity": {"value": 7.1, "unit": "mmol/L"},
    }


def _visit(aid: str, pid: str, start: dt.datetime) -> dict[str, Any]:
    return {
        "resourceType": "Appointment",
        "id": aid,
        "status": "booked",
        "start": start.isoformat(),
        "end": (start + dt.timedelta(minutes=30)).isoformat(),
        "participant": [{"actor": {"reference": f"Patient/{pid}"}, "status": "accepted"}],
    }


def _bundle(*resources: dict[str, Any]) -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"resource": r} for r in resources],
    }


async def _import(db: Database, *resources: dict[str, Any]) -> None:
    await fhir.import_bundle(db, _bundle(*resources), SYDNEY)


async def _practice(db: Database, server: BotAPIServer) -> tuple[SimUser, SimUser, SimUser, int]:
    """Ann (signed in before the practice's first import, which brings her, her invoice and
    Mia in) holds Mia with Clinical access; Bob has Administrative access to Mia, Cat had
    Clinical access until it was revoked."""
    ann, bob, cat = server.user(700, "Ann"), server.user(701, "Bob"), server.user(702, "Cat")
    await signed_in(db, ann, "Ann Lee", email=ANN_EMAIL)
    await signed_in(db, bob, "Bob Lee", dt.date(1984, 6, 1))
    await signed_in(db, cat, "Cat Lee", dt.date(1983, 7, 2))
    await _import(
        db,
        _patient("ann", "Ann Lee", ANN_EMAIL),
        _patient("mia", "Mia Lee"),
        _invoice("inv-0", "ann", "A-0"),
        _invoice("inv-1", "mia", "M-1"),
    )
    async with db.read() as conn:
        found = await fhir_patient(conn, "Patient/mia")
    await holder(db, await patient_id(db, 700), found, Level.CLINICAL, Role.EDIT)
    await holder(db, await patient_id(db, 701), found, Level.ADMINISTRATIVE, Role.VIEW)
    revoked = await holder(db, await patient_id(db, 702), found, Level.CLINICAL, Role.VIEW)
    async with db.transaction() as conn:
        await grants.end(
            conn, revoked, from_status=GrantStatus.ACTIVE, by=None, reason=EndReason.REVOKED
        )
    return ann, bob, cat, found


async def fhir_patient(conn: Any, fhir_id: str) -> int:
    from storage import portal as portal_data

    found = await portal_data.patient_by_fhir_id(conn, fhir_id)
    assert found is not None
    return found.id


async def _notices_settled(db: Database) -> bool:
    waiting = await rows(
        db,
        "SELECT count(*) FROM outbox WHERE kind IN ('new_item', 'appointment_moved')"
        " AND status = 'queued'",
    )
    return waiting == [(0,)]


async def test_an_administrative_holder_gets_the_invoice_notice_not_the_result_notice(
    fixed: FixedClock,  # noqa: F811
    app: App,
    server: BotAPIServer,
    bot_db: Database,
) -> None:
    fixed.set(at(3, 10))
    ann, bob, cat, mia = await _practice(bot_db, server)
    bob_id = await patient_id(bot_db, 701)
    portal(app).sender.wake()
    await until(lambda: _notices_settled(bot_db))
    await server.wait_idle()
    assert not [m for m in ann.bot_messages if "new" in m.text.lower()]  # the first import

    await _import(
        bot_db,
        _invoice("inv-2", "mia", "M-2"),
        _result("obs-1", "mia", "Secret glucose result"),
        _invoice("inv-3", "ann", "A-3"),
    )
    portal(app).sender.wake()
    invoice = await ann.wait_for("There is a new invoice for Mia Lee.")
    await ann.wait_for("A new result for Mia Lee is ready.")
    await ann.wait_for("You have a new invoice.")
    await bob.wait_for("There is a new invoice for Mia Lee.")
    await until(lambda: _notices_settled(bot_db))
    await server.wait_idle()
    assert not [m for m in bob.bot_messages if "result" in m.text], bob.transcript()
    queued_for_bob = await rows(
        bot_db, "SELECT detail FROM outbox WHERE kind = 'new_item' AND patient_id = ?", bob_id
    )
    about = json.dumps({"subject": mia, "item": "invoice"})
    assert queued_for_bob == [(about,)]  # the result was not even queued for Bob
    assert not [m for m in cat.bot_messages if "new" in m.text.lower()], cat.transcript()
    # Never the content: no amount, number or title on a lock screen.
    for m in [*ann.bot_messages, *bob.bot_messages]:
        assert "M-2" not in m.text and "120" not in m.text and "glucose" not in m.text

    # Its button opens the invoices behind the usual checks.
    assert invoice.labels == ["🧾 Invoices"]
    await bob.tap("🧾 Invoices", message=await bob.wait_for("There is a new invoice"))
    assert "Viewing: Mia Lee" in bob.last.text and "M-2" in bob.last.text, bob.transcript()
    # A result's button, forged by an Administrative holder: refused like /records.
    await bob.tap_data(OpenNewItem(mia, Item.RECORD).encode(), message=bob.last)
    assert "clinical records are not shared with you" in bob.last.text, bob.transcript()


async def test_nothing_is_told_about_a_patient_the_import_marks_deceased(
    fixed: FixedClock,  # noqa: F811
    app: App,
    server: BotAPIServer,
    bot_db: Database,
) -> None:
    fixed.set(at(3, 10))
    ann, bob, _cat, _mia = await _practice(bot_db, server)
    await _import(
        bot_db, _patient("mia", "Mia Lee", deceased=True), _invoice("inv-2", "mia", "M-2")
    )
    portal(app).sender.wake()
    await until(lambda: _notices_settled(bot_db))
    await server.wait_idle()
    assert not [m for m in (*ann.bot_messages, *bob.bot_messages) if "new" in m.text.lower()]


async def test_a_moved_appointment_is_told_to_whoever_was_reminded_of_it(
    fixed: FixedClock,  # noqa: F811
    app: App,
    server: BotAPIServer,
    bot_db: Database,
) -> None:
    fixed.set(at(3, 10))
    ann, bob, _cat, _mia = await _practice(bot_db, server)
    await _import(bot_db, _visit("v-1", "mia", at(4, 9)))
    await sweep(app, fixed, at(3, 10))
    await ann.wait_for("Reminder: Mia Lee has an appointment on Tue 4 Jun 2030 · 9:00")
    await bob.wait_for("Reminder: Mia Lee has an appointment")
    await until(settled(bot_db))

    await _import(bot_db, _visit("v-1", "mia", at(5, 11)))
    portal(app).sender.wake()
    moved = await ann.wait_for("Mia Lee's appointment has moved to Wed 5 Jun 2030 · 11:00")
    await bob.wait_for("Mia Lee's appointment has moved to Wed 5 Jun 2030 · 11:00")
    assert moved.buttons == []
    # The reminders of the new time come in their turn.
    again = await sweep(app, fixed, at(4, 11, 30))
    assert again.messages == 2
    await ann.wait_for("Reminder: Mia Lee has an appointment on Wed 5 Jun 2030 · 11:00")
