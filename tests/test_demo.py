"""The demo family (`seed-demo`), and the portal repository the views page through, tried
on that family's data."""

from __future__ import annotations

import asyncio
import datetime as dt
import sqlite3
import zoneinfo
from pathlib import Path

import pytest

from bot import access, invitations
from bot.access import Act, Area
from bot.invitations import InviteState
from playground import demo
from storage import Database, clock, patients, portal
from storage.clock import FixedClock
from tests.test_cli import run_cli

TODAY = dt.date(2026, 3, 2)
TZ = zoneinfo.ZoneInfo("Australia/Sydney")
NOW = int(dt.datetime.combine(TODAY, dt.time(0), tzinfo=TZ).timestamp())
STAFF = 4242
TABLES = (
    "patients",
    "invites",
    "grants",
    "practitioners",
    "audit_events",
    "appointments",
    "invoices",
    "clinical_records",
)


def _counts(path: str | Path) -> dict[str, int]:
    with sqlite3.connect(path) as conn:
        return {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in TABLES}


async def _seed(db: Database, staff: int | None = STAFF) -> demo.DemoResult:
    return await demo.seed_demo(
        db,
        bot_username="demo_bot",
        ttl_days=14,
        practitioner_telegram_id=staff,
        today=TODAY,
        tz=TZ,
    )


async def _family(db: Database) -> dict[str, int]:
    async with db.read() as conn:
        sam = await patients.by_email(conn, "sam.rivera@example.com")
        alex = await patients.by_email(conn, "alex.chen@example.com")
        assert sam is not None and alex is not None
        kids = await patients.held_by(conn, sam.id)
    assert [(k.full_name, k.date_of_birth) for k in kids] == [
        ("Lily Rivera", dt.date(2015, 9, 3)),
        ("Noah Rivera", dt.date(2019, 1, 22)),
    ]
    return {"sam": sam.id, "alex": alex.id, "lily": kids[0].id, "noah": kids[1].id}


async def test_the_demo_family_can_sign_in(db: Database) -> None:
    result = await _seed(db)
    assert result.created and list(result.links) == ["parent", "partner"]
    for label, person in demo.INVITED.items():
        link = result.links[label]
        assert link.startswith("https://t.me/demo_bot?start=")
        check = await invitations.check_invite(db, link.split("=", 1)[1], 9001)
        assert check.state is InviteState.VALID and check.invite and check.patient
        assert check.patient.full_name == person.full_name
        assert check.invite.invited_by == STAFF  # the practitioner's invites, as with /invite
        dob = await invitations.check_date_of_birth(db, check.invite.id, person.date_of_birth, 9001)
        assert dob.matches
    assert _counts(db.path)["practitioners"] == 1


async def test_the_demo_family_has_the_access_it_describes(db: Database) -> None:
    await _seed(db)
    ids = await _family(db)
    with sqlite3.connect(db.path) as conn:
        grants = conn.execute(
            "SELECT accessor_id, subject_id, relationship, level, role, status FROM grants"
            " ORDER BY id"
        ).fetchall()
    assert grants == [
        (ids["sam"], ids["lily"], "daughter", "clinical", "edit", "active"),
        (ids["sam"], ids["noah"], "son", "administrative", "view", "active"),
        (ids["alex"], ids["sam"], "partner", "clinical", "view", "pending"),
    ]


async def test_the_demo_children_are_as_old_whenever_it_is_made(db: Database) -> None:
    """Made in June 2028, Lily is still 10: Sam still sees her clinical records (a fixed
    date of birth would have made her 12, and the policy would have limited his access)."""
    later = dt.date(2028, 6, 1)
    moment = dt.datetime.combine(later, dt.time(9), tzinfo=TZ)
    with clock.use(FixedClock(moment)):
        await demo.seed_demo(db, bot_username="demo_bot", ttl_days=14, today=later, tz=TZ)
        async with db.read() as conn:
            sam = await patients.by_email(conn, "sam.rivera@example.com")
            assert sam is not None
            kids = await patients.held_by(conn, sam.id)
            assert [(k.full_name, k.date_of_birth) for k in kids] == [
                ("Lily Rivera", dt.date(2017, 9, 3)),
                ("Noah Rivera", dt.date(2021, 1, 22)),
            ]
            lily = kids[0].id
            assert (await access.permission(conn, sam.id, lily, Area.RECORDS, Act.VIEW)).allowed


async def test_each_portal_has_more_than_a_page_of_everything(db: Database) -> None:
    await _seed(db)
    ids = await _family(db)
    cancelled = 0
    async with db.read() as conn:
        for who in ("sam", "lily", "noah"):
            pid = ids[who]
            upcoming = await portal.upcoming_appointments(conn, pid, NOW, 0, 100)
            past = await portal.past_appointments(conn, pid, NOW, 0, 100)
            invoices = await portal.invoices_page(conn, pid, 0, 100)
            records = await portal.records_page(conn, pid, 0, 100)
            assert min(len(upcoming), len(past), len(invoices), len(records)) > 5, who
            assert all(a.starts_at >= NOW + 86400 for a in upcoming)  # none "today"
            assert {a.status for a in upcoming} >= {"booked", "confirmed"}
            assert {a.status for a in past} <= {"confirmed", "cancelled"}
            assert len({a.practitioner for a in past + upcoming}) >= 3
            assert len({a.location for a in past + upcoming}) >= 3
            cancelled += sum(a.status == "cancelled" for a in past + upcoming)
            assert {i.paid for i in invoices} == {True, False}
            assert {i.currency for i in invoices} == {"AUD"}
            assert invoices[0].issued_on <= TODAY
            kinds = {r.kind for r in records}
            assert kinds >= {"immunisation", "condition", "result", "allergy"}, who
            patient = await patients.get(conn, pid)
            assert patient is not None and patient.date_of_birth is not None
            assert all(patient.date_of_birth < r.recorded_on <= TODAY for r in records), who
            assert any(any(ch.isdigit() for ch in r.details) for r in records if r.kind == "result")
    assert cancelled == 1


async def test_seeding_twice_changes_nothing(db: Database) -> None:
    await _seed(db)
    before = _counts(db.path)
    again = await _seed(db, staff=777)
    assert again == demo.DemoResult(created=False, links={})
    assert _counts(db.path) == before


async def test_a_failure_half_way_leaves_nothing_behind(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = 0
    real = portal.add_record

    async def failing(*args: object, **kwargs: object) -> object:
        nonlocal calls
        calls += 1
        if calls == 12:  # well into the second child's records
            raise RuntimeError("disk full")
        return await real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(portal, "add_record", failing)
    with pytest.raises(RuntimeError, match="disk full"):
        await _seed(db)
    assert _counts(db.path) == dict.fromkeys(TABLES, 0)
    monkeypatch.setattr(portal, "add_record", real)
    assert (await _seed(db)).created  # no half-made demo to trip over


async def test_without_a_practitioner_id_nobody_is_registered(db: Database) -> None:
    result = await _seed(db, staff=None)
    assert result.created
    with sqlite3.connect(db.path) as conn:
        assert conn.execute("SELECT count(*) FROM practitioners").fetchone() == (0,)
        assert conn.execute("SELECT DISTINCT invited_by FROM invites").fetchall() == [(None,)]


def test_seed_demo_from_the_command_line(tmp_path: Path) -> None:
    env = {"PORTAL_DB_PATH": str(tmp_path / "p.db")}
    args = ("seed-demo", "--bot-username", "@demo_bot", "--practitioner-telegram-id", "4242")
    first = run_cli(*args, env=env)
    assert first.returncode == 0, first.stderr
    lines = first.stdout.splitlines()
    parent = next(line for line in lines if line.strip().startswith("parent"))
    partner = next(line for line in lines if line.strip().startswith("partner"))
    assert (
        "Sam Rivera" in parent
        and "1986-04-12" in parent
        and "https://t.me/demo_bot?start=" in parent
    )
    assert "Alex Chen" in partner and "1985-11-30" in partner
    assert "Telegram user 4242 is Dr Maya Okafor and can send /invite." in lines
    again = run_cli(*args, env=env)
    assert again.returncode == 0
    assert len(again.stdout.strip().splitlines()) == 1
    assert "already" in again.stdout and "python -m bot invite" in again.stdout
    no_name = run_cli("seed-demo", env={"PORTAL_DB_PATH": str(tmp_path / "q.db")})
    assert no_name.returncode == 2 and "--bot-username" in no_name.stderr


# --- The repository, on the demo's data -------------------------------------------------


async def test_pages_follow_on_without_gaps_or_repeats(db: Database) -> None:
    await _seed(db)
    sam = (await _family(db))["sam"]
    async with db.read() as conn:
        for fetch, key in (
            (lambda o, n: portal.upcoming_appointments(conn, sam, NOW, o, n), "upcoming"),
            (lambda o, n: portal.past_appointments(conn, sam, NOW, o, n), "past"),
            (lambda o, n: portal.invoices_page(conn, sam, o, n), "invoices"),
            (lambda o, n: portal.records_page(conn, sam, o, n), "records"),
        ):
            everything = await fetch(0, 1000)
            paged: list[int] = []
            offset = 0
            while True:
                rows = await fetch(offset, 3 + 1)  # one more, to learn if a next page exists
                paged.extend(r.id for r in rows[:3])
                if len(rows) <= 3:
                    break
                offset += 3
            assert paged == [r.id for r in everything], key
            with pytest.raises(ValueError):
                await fetch(0, -1)
    async with db.read() as conn:
        soon = await portal.upcoming_appointments(conn, sam, NOW, 0, 100)
        before = await portal.past_appointments(conn, sam, NOW, 0, 100)
        invoices = await portal.invoices_page(conn, sam, 0, 100)
        records = await portal.records_page(conn, sam, 0, 100)
    assert [a.starts_at for a in soon] == sorted(a.starts_at for a in soon)
    assert [a.starts_at for a in before] == sorted((a.starts_at for a in before), reverse=True)
    assert [i.issued_on for i in invoices] == sorted((i.issued_on for i in invoices), reverse=True)
    assert [r.recorded_on for r in records] == sorted(
        (r.recorded_on for r in records), reverse=True
    )


async def test_a_status_changes_exactly_once(db: Database) -> None:
    await _seed(db)
    ids = await _family(db)
    async with db.read() as conn:
        booked = next(
            a
            for a in await portal.upcoming_appointments(conn, ids["noah"], NOW, 0, 100)
            if a.status == "booked"
        )

    async def cancel(patient_id: int) -> bool:
        async with db.transaction() as conn:
            return await portal.set_appointment_status(
                conn, booked.id, patient_id, ("booked", "confirmed"), "cancelled"
            )

    assert not await cancel(ids["lily"])  # an id from another patient's buttons
    results = await asyncio.gather(*(cancel(ids["noah"]) for _ in range(5)))
    assert sorted(results) == [False, False, False, False, True]
    async with db.read() as conn:
        after = await portal.get_appointment(conn, booked.id)
        assert await portal.get_appointment(conn, 10**9) is None
    assert (
        after is not None and after.status == "cancelled" and after.updated_at >= booked.updated_at
    )


async def test_page_queries_read_their_index_in_order(db: Database) -> None:
    """With a million rows a page must stay a short index walk: no full scan and no sort
    of the patient's rows (a "TEMP B-TREE") before LIMIT applies."""
    await _seed(db)
    sam = (await _family(db))["sam"]
    statements: list[str] = []
    await db.set_trace_callback(statements.append)
    async with db.read() as conn:
        await portal.upcoming_appointments(conn, sam, NOW, 5, 6)
        await portal.past_appointments(conn, sam, NOW, 5, 6)
        await portal.invoices_page(conn, sam, 5, 6)
        await portal.records_page(conn, sam, 5, 6)
        plans = {}
        for sql in [s for s in statements if s.startswith("SELECT")][:4]:  # EXPLAINs traced too
            cur = await conn.execute(f"EXPLAIN QUERY PLAN {sql}")
            plans[sql.split(" FROM ")[1].split()[0] + (" past" if "DESC" in sql else "")] = [
                row[3] for row in await cur.fetchall()
            ]
    assert plans == {
        "appointments": [
            "SEARCH appointments USING INDEX appointments_patient_start"
            " (patient_id=? AND starts_at>?)"
        ],
        "appointments past": [
            "SEARCH appointments USING INDEX appointments_patient_start"
            " (patient_id=? AND starts_at<?)"
        ],
        "invoices past": ["SEARCH invoices USING INDEX invoices_patient_issued (patient_id=?)"],
        "clinical_records past": [
            "SEARCH clinical_records USING INDEX clinical_records_patient_recorded (patient_id=?)"
        ],
    }
