"""Appointment reminders end to end: the sweep queues them (bot/reminders.py, called as the
sweep calls it), the real bot sends them through the outbox, the Bot API emulator receives
them. Time is moved with the injected clock, never slept through."""

from __future__ import annotations

import asyncio
import datetime as dt
import zoneinfo
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from telegram.ext import Application

from bot import access
from bot.access import AccessRequest
from bot.app import build_application, running
from bot.callbacks import ConfirmFromReminder
from bot.context import portal
from bot.reminders import ReminderReport, queue_due_reminders
from bot.settings import Settings
from storage import Database, clock, grants, logins
from storage import portal as portal_data
from storage.clock import FixedClock
from storage.db import fetch_all
from storage.vocabulary import GrantStatus, Level, Relationship, Role
from tests.botapi import BotAPIServer, Msg, SimUser
from tests.helpers import signed_in

SYDNEY = zoneinfo.ZoneInfo("Australia/Sydney")
HOUR = 3600
CONFIRM, CANCEL = "✅ Confirm", "❌ Cancel appointment"
App = Application  # type: ignore[type-arg]


def at(day: int, hour: int, minute: int = 0) -> dt.datetime:
    """A moment in June 2030, in the practice's time zone (the 3rd is a Monday)."""
    return dt.datetime(2030, 6, day, hour, minute, tzinfo=SYDNEY)


def ts(moment: dt.datetime) -> int:
    return int(moment.timestamp())


@pytest.fixture
def fixed() -> Iterator[FixedClock]:
    with clock.use(FixedClock(at(3, 9))) as moved:
        yield moved


@dataclass
class Family:
    ann: SimUser
    ann_id: int
    mia: int
    noah: int
    mia_visit: int  # 4 June, 14:00
    noah_visit: int  # 4 June, 15:00


async def patient_id(db: Database, telegram_id: int) -> int:
    async with db.read() as conn:
        login = await logins.get(conn, telegram_id)
    assert login is not None
    return login.patient_id


async def family(db: Database, server: BotAPIServer) -> Family:
    """Ann (signed in) holds Mia (Clinical, Edit) and Noah (Administrative, View)."""
    ann = server.user(700, "Ann")
    await signed_in(db, ann, "Ann Lee")
    ann_id = await patient_id(db, 700)
    mia, _ = await access.create_dependent(
        db,
        ann_id,
        "Mia Lee",
        dt.date(2024, 5, 3),  # children in June 2030, under the policy's teen age
        AccessRequest("Mia Lee", Relationship.DAUGHTER, None, Level.CLINICAL, Role.EDIT),
    )
    noah, _ = await access.create_dependent(
        db,
        ann_id,
        "Noah Lee",
        dt.date(2026, 1, 9),
        AccessRequest("Noah Lee", Relationship.SON, None, Level.ADMINISTRATIVE, Role.VIEW),
    )
    mia_visit = await appointment(db, mia.id, at(4, 14), "Dr Secret", "Oncology wing")
    noah_visit = await appointment(db, noah.id, at(4, 15))
    return Family(ann, ann_id, mia.id, noah.id, mia_visit, noah_visit)


async def appointment(
    db: Database,
    patient: int,
    start: dt.datetime,
    practitioner: str | None = "Dr Rao",
    location: str | None = "Room 1",
) -> int:
    async with db.transaction() as conn:
        made = await portal_data.add_appointment(
            conn, patient, ts(start), ts(start) + HOUR, practitioner, location
        )
    return made.id


async def holder(db: Database, accessor_id: int, subject_id: int, level: Level, role: Role) -> int:
    """An active grant, arranged directly (deciding one is tested elsewhere)."""
    async with db.transaction() as conn:
        grant = await grants.create(
            conn,
            accessor_id=accessor_id,
            subject_id=subject_id,
            subject_email=None,
            subject_name=None,
            relationship=Relationship.PARTNER,
            relationship_other=None,
            level=level,
            role=role,
            expires_at=None,
        )
        assert await grants.decide(
            conn, grant.id, status=GrantStatus.ACTIVE, decided_by=None, level=level, role=role
        )
    return grant.id


async def sweep(app: App, fixed: FixedClock, moment: dt.datetime) -> ReminderReport:
    """What the sweep does at `moment`; the bot's sender is woken (it would look soon)."""
    fixed.set(moment)
    p = portal(app)
    report = await queue_due_reminders(p.db, p.settings, clock.now())
    p.sender.wake()
    return report


def reminders_of(user: SimUser, name: str) -> list[Msg]:
    return [m for m in user.bot_messages if f"Reminder: {name} has" in m.text]


async def rows(db: Database, sql: str, *params: object) -> list[tuple[object, ...]]:
    async with db.read() as conn:
        return [tuple(row) for row in await fetch_all(conn, sql, params)]


async def until(check: Callable[[], Awaitable[bool]], seconds: float = 5) -> None:
    """Wait for a state the bot reaches on its own (a row sent, postponed, dropped)."""
    for _ in range(int(seconds * 20)):
        if await check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the bot did not get there in time")


def settled(db: Database) -> Callable[[], Awaitable[bool]]:
    """True once every reminder due by now has been sent or dropped (or postponed)."""

    async def check() -> bool:
        waiting = await rows(
            db,
            "SELECT count(*) FROM outbox WHERE kind = 'reminder' AND status = 'queued'"
            " AND due_at <= ?",
            clock.now(),
        )
        return waiting == [(0,)]

    return check


async def status_of(db: Database, appointment_id: int) -> str:
    async with db.read() as conn:
        found = await portal_data.get_appointment(conn, appointment_id)
    assert found is not None
    return found.status


# --- A parent with two children -----------------------------------------------------------


async def test_a_parent_gets_each_childs_reminder_once_at_24_and_2_hours(
    fixed: FixedClock, app: App, server: BotAPIServer, bot_db: Database
) -> None:
    f = await family(bot_db, server)
    ann = f.ann

    first = await sweep(app, fixed, at(3, 15))  # 23 and 24 hours ahead
    assert first.queued == {24 * HOUR: 2, 2 * HOUR: 0} and first.appointments == 2
    await ann.wait_for("Reminder: Mia Lee has an appointment on Tue 4 Jun 2030 · 2:00")
    await ann.wait_for("Reminder: Noah Lee has an appointment on Tue 4 Jun 2030 · 3:00")
    again = await sweep(app, fixed, at(3, 15, 5))
    assert again.messages == 0  # queued once, however often the sweep runs

    mia_2h = await sweep(app, fixed, at(4, 12, 30))  # Mia's is 1.5 h ahead, Noah's 2.5 h
    assert mia_2h.queued == {24 * HOUR: 0, 2 * HOUR: 1}
    noah_2h = await sweep(app, fixed, at(4, 13, 1))
    assert noah_2h.queued == {24 * HOUR: 0, 2 * HOUR: 1}
    await until(settled(bot_db))
    await server.wait_idle()
    assert len(reminders_of(ann, "Mia Lee")) == 2 and len(reminders_of(ann, "Noah Lee")) == 2

    # Whose and when, never the practitioner or where: reminders show on lock screens.
    assert all("Dr Secret" not in m.text and "Oncology" not in m.text for m in ann.bot_messages)
    # Edit (Mia) gets Confirm and Cancel; View (Noah) gets no buttons.
    assert all(m.labels == [CONFIRM, CANCEL] for m in reminders_of(ann, "Mia Lee"))
    assert all(m.buttons == [] for m in reminders_of(ann, "Noah Lee"))

    latest = reminders_of(ann, "Mia Lee")[-1]
    await ann.tap(CONFIRM, message=latest)
    assert "Attendance confirmed." in latest.text and latest.labels == [CANCEL], ann.transcript()
    assert await status_of(bot_db, f.mia_visit) == "confirmed"


async def test_cancel_on_a_reminder_asks_once_more_and_no_reminder_follows(
    fixed: FixedClock, app: App, server: BotAPIServer, bot_db: Database
) -> None:
    f = await family(bot_db, server)
    await sweep(app, fixed, at(3, 15))
    reminder = await f.ann.wait_for("Reminder: Mia Lee")
    await f.ann.tap(CANCEL, message=reminder)
    assert "Cancel this appointment?" in reminder.text
    assert reminder.labels == ["Yes, cancel it", "No, keep it"]
    await f.ann.tap("No, keep it", message=reminder)
    assert reminder.labels == [CONFIRM, CANCEL] and await status_of(bot_db, f.mia_visit) == "booked"
    await f.ann.tap(CANCEL, message=reminder)
    await f.ann.tap("Yes, cancel it", message=reminder)
    assert "Appointment cancelled." in reminder.text and reminder.buttons == []
    assert await status_of(bot_db, f.mia_visit) == "cancelled"

    later = await sweep(app, fixed, at(4, 12, 30))
    assert later.queued[2 * HOUR] == 0  # a cancelled appointment is not reminded of


async def test_forged_reminder_buttons_are_checked_on_the_server(
    fixed: FixedClock, app: App, server: BotAPIServer, bot_db: Database
) -> None:
    f = await family(bot_db, server)
    stranger = await appointment(bot_db, await _stranger(bot_db, server), at(4, 10))
    await sweep(app, fixed, at(3, 15))
    noahs = await f.ann.wait_for("Reminder: Noah Lee")
    # View access: confirming Noah's appointment is refused, whatever the button says.
    await f.ann.tap_data(ConfirmFromReminder(f.noah_visit).encode(), message=noahs)
    assert await status_of(bot_db, f.noah_visit) == "booked"
    assert f.ann.alerts[-1] == ("You can't change this appointment.", True)
    # Someone else's appointment: refused, and nothing about it is shown.
    await f.ann.tap_data(ConfirmFromReminder(stranger).encode(), message=noahs)
    assert await status_of(bot_db, stranger) == "booked"
    assert f.ann.alerts[-1] == ("You no longer have access to this portal.", True)
    assert all("Zed" not in m.text for m in f.ann.bot_messages)


async def _stranger(db: Database, server: BotAPIServer) -> int:
    zed = server.user(799, "Zed")
    await signed_in(db, zed, "Zed Stranger", dt.date(1970, 1, 1))
    return await patient_id(db, 799)


# --- Access is checked when a reminder goes, not only when it was queued --------------------


async def test_a_revoked_holder_gets_nothing_more(
    fixed: FixedClock, app: App, server: BotAPIServer, bot_db: Database
) -> None:
    f = await family(bot_db, server)
    bob = server.user(701, "Bob")
    await signed_in(bot_db, bob, "Bob Lee", dt.date(1984, 6, 1))
    grant = await holder(bot_db, await patient_id(bot_db, 701), f.mia, Level.CLINICAL, Role.VIEW)

    await sweep(app, fixed, at(3, 15))
    bobs = await bob.wait_for("Reminder: Mia Lee")
    assert bobs.buttons == []  # View: no Confirm or Cancel
    await access.revoke(bot_db, f.ann_id, grant)  # revoked today: nothing tomorrow

    await sweep(app, fixed, at(4, 12, 30))
    await f.ann.wait_for("Reminder: Mia Lee", after=bobs.message_id)
    await until(settled(bot_db))
    await server.wait_idle()
    assert len(reminders_of(bob, "Mia Lee")) == 1, bob.transcript()


async def test_quiet_hours_hold_the_24_hour_reminder_until_8_and_revocation_meanwhile_counts(
    fixed: FixedClock, app: App, server: BotAPIServer, bot_db: Database
) -> None:
    f = await family(bot_db, server)
    late = await appointment(bot_db, f.mia, at(4, 22, 30))
    bob = server.user(701, "Bob")
    await signed_in(bot_db, bob, "Bob Lee", dt.date(1984, 6, 1))
    grant = await holder(bot_db, await patient_id(bot_db, 701), f.mia, Level.CLINICAL, Role.VIEW)

    await sweep(app, fixed, at(3, 22, 45))  # 23 h 45 before, in quiet hours

    async def postponed() -> bool:
        due = await rows(bot_db, "SELECT due_at FROM outbox WHERE ref_id = ?", late)
        return len(due) == 2 and all(d == (ts(at(4, 8)),) for d in due)

    await until(postponed)
    await server.wait_idle()
    assert not reminders_of(f.ann, "Mia Lee") and not reminders_of(bob, "Mia Lee")

    await access.revoke(bot_db, f.ann_id, grant)  # overnight
    fixed.set(at(4, 8))
    portal(app).sender.wake()
    held = await f.ann.wait_for("Reminder: Mia Lee has an appointment on Tue 4 Jun 2030 · 10:30")
    assert held.labels == [CONFIRM, CANCEL]
    await until(settled(bot_db))
    await server.wait_idle()
    assert not reminders_of(bob, "Mia Lee"), bob.transcript()


async def test_a_2_hour_reminder_in_quiet_hours_is_dropped_not_held(
    fixed: FixedClock, app: App, server: BotAPIServer, bot_db: Database
) -> None:
    f = await family(bot_db, server)
    early = await appointment(bot_db, f.mia, at(4, 9))
    report = await sweep(app, fixed, at(4, 7, 30))
    assert report.queued[2 * HOUR] == 1

    async def dropped() -> bool:
        why = await rows(bot_db, "SELECT status, dropped_why FROM outbox WHERE ref_id = ?", early)
        return why == [("dropped", "quiet")]

    await until(dropped)
    fixed.set(at(4, 8, 5))
    portal(app).sender.wake()
    after = await sweep(app, fixed, at(4, 8, 5))
    assert after.queued[2 * HOUR] == 0 and after.dropped == {"quiet": 1}
    await server.wait_idle()
    assert not [m for m in reminders_of(f.ann, "Mia Lee") if "· 9:00" in m.text]


# --- Restarts, blocked chats, the command line --------------------------------------------


async def test_a_restart_between_queueing_and_sending_sends_each_once(
    fixed: FixedClock, server: BotAPIServer, settings: Settings
) -> None:
    async with running(build_application(settings), poll_timeout=1) as app:
        f = await family(portal(app).db, server)
    fixed.set(at(3, 15))
    db = Database(settings.db_path)  # the sweep's own process, while no bot runs
    await db.migrate()
    queued = await queue_due_reminders(db, settings, clock.now())
    await db.close()
    assert queued.messages == 2
    async with running(build_application(settings), poll_timeout=1):
        await f.ann.wait_for("Reminder: Mia Lee")
        await f.ann.wait_for("Reminder: Noah Lee")
    async with running(build_application(settings), poll_timeout=1) as app:
        again = await queue_due_reminders(portal(app).db, settings, clock.now())
        portal(app).sender.wake()
        await server.wait_idle()
    assert again.messages == 0
    assert len(reminders_of(f.ann, "Mia Lee")) == 1 and len(reminders_of(f.ann, "Noah Lee")) == 1


async def test_a_recipient_who_blocked_the_bot_is_skipped_and_counted_not_kept(
    fixed: FixedClock, app: App, server: BotAPIServer, bot_db: Database
) -> None:
    f = await family(bot_db, server)
    server.block(700)
    await sweep(app, fixed, at(3, 15))
    await until(settled(bot_db))
    why = await rows(
        bot_db, "SELECT DISTINCT status, dropped_why FROM outbox WHERE kind = 'reminder'"
    )
    assert why == [("dropped", "blocked")]
    report = await sweep(app, fixed, at(3, 15, 5))
    assert report.dropped == {"blocked": 2}
    server.unblock(700)
    await f.ann.send("/start")  # back: nothing stale was kept for them
    await server.wait_idle()
    assert not reminders_of(f.ann, "Mia Lee") and not reminders_of(f.ann, "Noah Lee")


async def test_a_deceased_patient_gets_no_reminder_and_nobody_is_reminded_for_them(
    fixed: FixedClock, app: App, server: BotAPIServer, bot_db: Database
) -> None:
    f = await family(bot_db, server)
    await _deceased(bot_db, f.mia)
    report = await sweep(app, fixed, at(3, 15))
    assert report.queued[24 * HOUR] == 1  # Noah's only
    await f.ann.wait_for("Reminder: Noah Lee")
    # Queued overnight, and the practice records a death before it goes: nothing goes.
    await appointment(bot_db, f.noah, at(5, 10))
    overnight = await sweep(app, fixed, at(4, 22, 45))
    assert overnight.queued[24 * HOUR] == 1
    await _deceased(bot_db, f.noah)
    fixed.set(at(5, 8))
    portal(app).sender.wake()
    await until(settled(bot_db))
    await server.wait_idle()
    assert not reminders_of(f.ann, "Mia Lee") and len(reminders_of(f.ann, "Noah Lee")) == 1


async def _deceased(db: Database, patient: int) -> None:
    """As an import of the practice's record would mark it (bot/fhir.py)."""
    async with db.transaction() as conn:
        await conn.execute("UPDATE patients SET deceased = 1 WHERE id = ?", (patient,))


def test_reminders_setting_is_checked_and_the_command_queues_them(tmp_path: Path) -> None:
    from tests.test_cli import run_cli

    db = tmp_path / "p.db"
    bad = run_cli("remind", env={"PORTAL_DB_PATH": str(db), "PORTAL_REMINDERS": "24h,soon"})
    assert bad.returncode == 2 and bad.stderr.strip().splitlines() == [
        "error: PORTAL_REMINDERS is invalid: Value error, 'soon' is not a time before the "
        "appointment, such as 24h or 30m"
    ]
    env = {"PORTAL_DB_PATH": str(db)}
    assert run_cli("migrate", env=env).returncode == 0
    import sqlite3

    with sqlite3.connect(db) as conn:
        conn.execute("INSERT INTO patients (full_name, created_at) VALUES ('Ann Lee', 0)")
        conn.execute(
            "INSERT INTO logins (telegram_user_id, patient_id, created_at) VALUES (700, 1, 0)"
        )
        conn.execute(
            "INSERT INTO appointments (patient_id, starts_at, ends_at, status, updated_at)"
            " VALUES (1, ?, ?, 'booked', 0)",
            (ts(at(4, 14)), ts(at(4, 15))),
        )
    dry = run_cli("remind", "--at", "2030-06-03T15:00", "--dry-run", env=env)
    assert dry.returncode == 0 and dry.stdout.startswith("would queue 1 reminders"), dry
    done = run_cli("remind", "--at", "2030-06-03T15:00", env=env)
    twice = run_cli("remind", "--at", "2030-06-03T15:10", env=env)
    assert done.stdout.startswith("queued 1 reminders for 1 appointments (1 at 24h)"), done
    assert twice.stdout.startswith("queued 0 reminders"), twice
    off = run_cli("remind", "--at", "2030-06-04T13:00", env={**env, "PORTAL_REMINDERS": ""})
    assert off.stdout.startswith("queued 0 reminders"), off
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*), min(due_at) FROM outbox").fetchone() == (
            1,
            ts(at(3, 15)),
        )
    # The sweep queues them too, as the bot's own sweep does every few minutes.
    with sqlite3.connect(db) as conn:
        conn.execute(
            "INSERT INTO appointments (patient_id, starts_at, ends_at, status, updated_at)"
            " VALUES (1, ?, ?, 'booked', 0)",
            (ts(at(5, 14)), ts(at(5, 15))),
        )
    swept = run_cli("sweep", "--at", "2030-06-04T15:00", env=env)
    again = run_cli("sweep", "--at", "2030-06-04T15:05", env=env)
    assert "Reminders: queued 1 reminders for 1 appointments (1 at 24h)" in swept.stdout, swept
    assert "Reminders: queued 0 reminders" in again.stdout, again


async def test_an_appointment_first_seen_within_2_hours_gets_one_reminder_not_two(
    fixed: FixedClock, db: Database
) -> None:
    from bot.settings import load_settings
    from storage import patients

    async with db.transaction() as conn:
        ann = await patients.create(conn, "Ann Lee", dt.date(1985, 2, 3))
        await logins.create(conn, 700, ann.id, None)
    await appointment(db, ann.id, at(3, 10))  # booked at 9:00 for 10:00
    report = await queue_due_reminders(db, load_settings(), clock.now())
    assert report.queued == {24 * HOUR: 0, 2 * HOUR: 1}
