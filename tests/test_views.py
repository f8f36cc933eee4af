"""/switch and the portal views, end to end: whose records, how much, and who may act."""

from __future__ import annotations

import datetime as dt

from telegram.ext import Application

from bot import access
from bot.access import AccessRequest, Area
from bot.app import build_application, running
from bot.callbacks import CancelAppointment, SwitchTo, TurnPage
from bot.context import portal as portal_of
from bot.settings import Settings
from storage import Database, audit, grants, portal
from storage.db import now
from storage.vocabulary import Level, Relationship, Role
from tests.botapi import BotAPIServer, SimUser
from tests.helpers import signed_in

HOUR = 3600


async def _family(db: Database, server: BotAPIServer) -> tuple[SimUser, int, int, int]:
    """Ann (signed in) holds Mia (Clinical, Edit) and Leo (Administrative, View)."""
    ann = server.user(700, "Ann")
    await signed_in(db, ann, "Ann Lee")
    async with db.read() as conn:
        cur = await conn.execute("SELECT patient_id FROM logins WHERE telegram_user_id = 700")
        ann_id = (await cur.fetchone())[0]
    mia, _ = await access.create_dependent(
        db,
        ann_id,
        "Mia Lee",
        dt.date(2016, 5, 1),
        AccessRequest("Mia Lee", Relationship.DAUGHTER, None, Level.CLINICAL, Role.EDIT),
    )
    leo, _ = await access.create_dependent(
        db,
        ann_id,
        "Leo Lee",
        dt.date(2019, 8, 2),
        AccessRequest("Leo Lee", Relationship.SON, None, Level.ADMINISTRATIVE, Role.VIEW),
    )
    start = now() + 24 * HOUR
    async with db.transaction() as conn:
        for i in range(12):
            at = start + i * 24 * HOUR
            await portal.add_appointment(conn, mia.id, at, at + HOUR, f"Dr Mia {i:02}", "Room 1")
        await portal.add_appointment(conn, leo.id, start, start + HOUR, "Dr Leo", "Room 2")
        await portal.add_appointment(conn, ann_id, start, start + HOUR, "Dr Ann", "Room 3")
        await portal.add_appointment(
            conn,
            mia.id,
            now() - 30 * 24 * HOUR,
            now() - 29 * 24 * HOUR,
            "Dr Past",
            "Room 9",
            "confirmed",
        )
        await portal.add_invoice(conn, mia.id, "INV-7", dt.date(2026, 10, 1), 12050, "AUD", False)
        await portal.add_invoice(conn, leo.id, "INV-8", dt.date(2026, 9, 1), 9900, "AUD", True)
        await portal.add_record(
            conn, mia.id, dt.date(2026, 3, 1), "immunisation", "Influenza vaccine", "Left arm"
        )
        await portal.add_record(conn, leo.id, dt.date(2026, 2, 1), "condition", "Asthma", "Mild")
    return ann, ann_id, mia.id, leo.id


async def test_switching_shows_whose_records_on_every_view(
    server: BotAPIServer, bot_db: Database
) -> None:
    ann, *_ = await _family(bot_db, server)
    await ann.send("/appointments")
    assert ann.last.text.startswith("👤 Viewing: your own portal")
    assert "Dr Ann" in ann.last.text and "Dr Mia" not in ann.last.text
    await ann.send("/switch")
    assert ann.last.labels == [
        "● Me (Ann Lee)",
        "Leo Lee (Son) · Administrative",
        "Mia Lee (Daughter) · Clinical",
    ]
    await ann.tap("Mia Lee (Daughter) · Clinical")
    # The tap lands on her upcoming appointments, in place of the list.
    assert ann.last.text.startswith("👥 Viewing: Mia Lee (Daughter) · Clinical, Edit")
    assert "Upcoming appointments" in ann.last.text and "Dr Mia 00" in ann.last.text
    for command, expected in [
        ("/appointments", "Dr Mia 00"),
        ("/invoices", "INV-7"),
        ("/records", "Influenza vaccine"),
        ("/details", "Name: Mia Lee"),
    ]:
        await ann.send(command)
        assert ann.last.text.startswith("👥 Viewing: Mia Lee (Daughter) · Clinical, Edit"), command
        assert expected in ann.last.text, (command, ann.last.text)
    assert "$120.50" in (await ann.send("/invoices"))[-1].text
    await ann.send("/switch")
    assert "● Mia Lee (Daughter) · Clinical" in ann.last.labels
    await ann.tap("Leo Lee (Son) · Administrative")
    await ann.send("/invoices")
    assert ann.last.text.startswith("👥 Viewing: Leo Lee (Son) · Administrative, View")
    assert "INV-8" in ann.last.text and "Paid" in ann.last.text and "INV-7" not in ann.last.text
    await ann.tap(
        "🔄 Switch patient",
        message=[m for m in ann.bot_messages if "🔄 Switch patient" in m.labels][-1],
    )
    await ann.tap("Me (Ann Lee)")
    await ann.send("/details")
    assert ann.last.text.startswith("👤 Viewing: your own portal") and "Ann Lee" in ann.last.text


async def test_pages_of_five_edit_in_place(server: BotAPIServer, bot_db: Database) -> None:
    ann, *_ = await _family(bot_db, server)
    await ann.send("/switch")
    await ann.tap("Mia Lee (Daughter) · Clinical")
    page = (await ann.send("/appointments"))[-1]
    assert [f"Dr Mia {i:02}" in page.text for i in range(6)] == [True] * 5 + [False]
    assert page.labels[-7:] == [
        "Page 1",
        "▶",
        "Past appointments",
        "🧾 Invoices",
        "📋 Records",
        "👤 Details",
        "🔄 Switch patient",
    ]
    await ann.tap("▶", message=page)
    assert "Dr Mia 05" in page.text and "Dr Mia 04" not in page.text and page.edited >= 1
    assert page.text.startswith("👥 Viewing: Mia Lee")
    await ann.tap("▶", message=page)
    assert "Dr Mia 10" in page.text and "Dr Mia 11" in page.text and "▶" not in page.labels
    await ann.tap("◀", message=page)
    assert "Dr Mia 05" in page.text
    await ann.tap("Past appointments", message=page)
    assert "Past appointments" in page.text and "Dr Past" in page.text and "Dr Mia" not in page.text
    assert not [label for label in page.labels if label.startswith("Cancel")]
    # The same message moves to her other views, each checked and whose it says.
    await ann.tap("🧾 Invoices", message=page)
    assert page.text.startswith("👥 Viewing: Mia Lee") and "INV-7" in page.text
    await ann.tap("👤 Details", message=page)
    assert "Name: Mia Lee" in page.text and "📅 Appointments" in page.labels
    await ann.tap("📅 Appointments", message=page)
    assert "Dr Mia 00" in page.text


async def test_administrative_access_never_shows_records(
    server: BotAPIServer, bot_db: Database
) -> None:
    ann, ann_id, _, leo = await _family(bot_db, server)
    await ann.send("/switch")
    await ann.tap("Leo Lee (Son) · Administrative")
    assert "🧾 Invoices" in ann.last.labels and "📋 Records" not in ann.last.labels
    await ann.send("/records")
    assert (
        "clinical records are not shared with you" in ann.last.text
        and "Asthma" not in ann.last.text
    )
    await ann.tap_data(TurnPage(Area.RECORDS, leo, 0).encode(), message=ann.last)
    assert ann.alerts[-1][1] is True and "not shared" in (ann.alerts[-1][0] or "")
    assert all("Asthma" not in m.text for m in ann.bot_messages)
    async with bot_db.read() as conn:
        refused = [e for e in await audit.for_subject(conn, leo) if e.action == "view.records"]
    assert len(refused) == 2 and all(
        e.outcome == "refused" and e.actor_patient_id == ann_id for e in refused
    )


async def test_view_role_cannot_act_and_edit_role_can(
    server: BotAPIServer, bot_db: Database
) -> None:
    ann, _, mia, leo = await _family(bot_db, server)
    await ann.send("/switch")
    await ann.tap("Leo Lee (Son) · Administrative")
    page = (await ann.send("/appointments"))[-1]
    assert not [label for label in page.labels if label.startswith(("Cancel", "Confirm"))]
    async with bot_db.read() as conn:
        leo_appt = (await portal.upcoming_appointments(conn, leo, now(), 0, 1))[0]
        mia_appt = (await portal.upcoming_appointments(conn, mia, now(), 0, 1))[0]
    await ann.tap_data(CancelAppointment(leo, leo_appt.id, 0).encode(), message=page)
    assert ann.alerts[-1] == ("You can't change this appointment.", True)
    # An Edit role on Mia does not reach Leo's appointment through Mia's buttons either.
    await ann.tap_data(CancelAppointment(mia, leo_appt.id, 0).encode(), message=page)
    assert ann.alerts[-1] == ("You can't change this appointment.", True)
    async with bot_db.read() as conn:
        assert (await portal.get_appointment(conn, leo_appt.id)).status == "booked"  # type: ignore[union-attr]

    await ann.send("/switch")
    await ann.tap("Mia Lee (Daughter) · Clinical")
    page = (await ann.send("/appointments"))[-1]
    first_cancel = next(label for label in page.labels if label.startswith("Cancel"))
    await ann.tap(first_cancel, message=page)
    assert "Cancel this appointment?" in page.text and "Dr Mia 00" in page.text
    await ann.tap("No, keep it", message=page)
    assert "Upcoming appointments" in page.text
    await ann.tap(first_cancel, message=page)
    await ann.tap("Yes, cancel it", message=page)
    assert ann.alerts[-1] == ("Appointment cancelled.", False)
    assert "❌ Cancelled" in page.text
    # A double tap.
    await ann.tap_data(CancelAppointment(mia, mia_appt.id, 0).encode(), message=page)
    assert ann.alerts[-1] == ("This appointment has already been changed.", True)
    fresh = (await ann.send("/appointments"))[-1]
    assert "❌ Cancelled" in fresh.text
    confirm = next(label for label in fresh.labels if label.startswith("Confirm"))
    await ann.tap(confirm, message=fresh)
    assert ann.alerts[-1] == ("Attendance confirmed.", False) and "✅ Confirmed" in fresh.text
    async with bot_db.read() as conn:
        events = [e.action for e in await audit.for_subject(conn, mia) if e.outcome == "ok"]
    assert "appointment.cancelled" in events and "appointment.confirmed" in events


async def test_revoked_while_selected_falls_back_to_own_portal(
    server: BotAPIServer, bot_db: Database
) -> None:
    ann, ann_id, mia, _ = await _family(bot_db, server)
    await ann.send("/switch")
    await ann.tap("Mia Lee (Daughter) · Clinical")
    page = (await ann.send("/appointments"))[-1]
    async with bot_db.read() as conn:
        cur = await conn.execute("SELECT id FROM grants WHERE subject_id = ?", (mia,))
        grant_id = (await cur.fetchone())[0]
    assert (await access.revoke(bot_db, ann_id, grant_id)).outcome == "done"  # Ann holds Mia
    await ann.tap("▶", message=page)
    assert ann.alerts[-1] == ("You no longer have access to this portal.", True)
    await ann.send("/appointments", expect=2)
    notice, view = ann.bot_messages[-2:]
    assert "Your access to Mia Lee's portal has ended" in notice.text
    assert view.text.startswith("👤 Viewing: your own portal")
    await ann.tap_data(SwitchTo(mia).encode(), message=view)
    assert ann.alerts[-1] == ("You don't have access to that portal.", True)


async def test_the_choice_survives_a_restart(server: BotAPIServer, settings: Settings) -> None:
    async with running(build_application(settings), poll_timeout=1) as app:
        db: Database = portal_of(app).db
        ann, *_ = await _family(db, server)
        await ann.send("/switch")
        await ann.tap("Mia Lee (Daughter) · Clinical")
    async with running(build_application(settings), poll_timeout=1) as again:
        assert isinstance(again, Application)
        await ann.send("/details")
        assert ann.last.text.startswith("👥 Viewing: Mia Lee (Daughter)")


HOME_BUTTONS = {
    "📅 Appointments": "Upcoming appointments",
    "🧾 Invoices": "Invoices",
    "📋 Records": "Clinical records",
    "👤 Details": "Name: Ann Lee",
    "🔄 Switch patient": "Whose portal would you like to see?",
    "🔐 Access": "Access",
    "📜 Activity": "Your access log",
    "➕ Add a patient you access": "full name",  # the home message becomes the first step
}
VIEW_BUTTONS = ("📅 Appointments", "🧾 Invoices", "📋 Records", "👤 Details", "🔄 Switch patient")


async def _chosen_then_ended(db: Database, ann_id: int, subject: int) -> None:
    """Ann looks at `subject`'s portal, then her access to it ends (she revokes it herself,
    as the holder of the account)."""
    async with db.transaction() as conn:
        grant = await grants.active(conn, ann_id, subject)
        if grant is None:
            grant = await grants.create(
                conn,
                accessor_id=ann_id,
                subject_id=subject,
                subject_email=None,
                subject_name="Mia Lee",
                relationship="daughter",
                relationship_other=None,
                level="clinical",
                role="edit",
                expires_at=None,
            )
            await grants.decide(
                conn, grant.id, status="active", decided_by=ann_id, level="clinical", role="edit"
            )
    assert await access.switch_to(db, 700, subject) is not None
    assert (await access.revoke(db, ann_id, grant.id)).outcome == "done"


async def test_every_home_button_answers_once_after_the_access_ended(
    server: BotAPIServer, bot_db: Database
) -> None:
    ann, ann_id, mia, _ = await _family(bot_db, server)
    home = (await ann.send("/start"))[-1]
    for label, shows in HOME_BUTTONS.items():
        await _chosen_then_ended(bot_db, ann_id, mia)
        calls, messages = len(server.calls), len(ann.bot_messages)
        await ann.tap(label, message=home)
        await server.wait_idle()
        answers = [name for name, _ in server.calls[calls:] if name == "answerCallbackQuery"]
        assert len(answers) == 1, (label, server.errors, ann.transcript())
        assert not server.errors, (label, server.errors)
        new = ann.bot_messages[messages:]
        assert shows in (new[-1] if new else home).text, (label, ann.transcript())
        if label in VIEW_BUTTONS:
            assert "Your access to Mia Lee's portal has ended" in new[0].text, label
            assert new[-1].text.startswith("👤 Viewing: your own portal"), label
