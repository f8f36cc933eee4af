"""The practice's policy through the real bot: a parent whose daughter turns 12, 14 and 18
across sweeps (the injected clock moved, and once the CLI's `sweep --at`), and access
between adults that reaches its end date. Each notice arrives once, in the recipient's
language; access ends at the minute, before any sweep."""

from __future__ import annotations

import asyncio
import datetime as dt
import zoneinfo
from pathlib import Path

from telegram.ext import Application

from bot import access, policy
from bot.access import AccessRequest
from bot.context import portal as portal_of
from bot.sweep import sweep
from storage import Database, audit, clock, portal
from storage.clock import FixedClock
from storage.vocabulary import Action, Level, Relationship, Role
from tests.botapi import BotAPIServer, SimUser
from tests.helpers import make_invite, make_practitioner, signed_in
from tests.test_cli import run_cli

SYDNEY = zoneinfo.ZoneInfo("Australia/Sydney")
DAY = 86400
MIA_BORN = dt.date(2015, 6, 10)
DOCTOR = 900


def at(y: int, m: int, d: int, hh: int = 0, mm: int = 0) -> dt.datetime:
    return dt.datetime(y, m, d, hh, mm, tzinfo=SYDNEY)


async def _patient_id(db: Database, telegram_id: int) -> int:
    async with db.read() as conn:
        cur = await conn.execute(
            "SELECT patient_id FROM logins WHERE telegram_user_id = ?", (telegram_id,)
        )
        row = await cur.fetchone()
    assert row is not None
    return int(row[0])


async def _swept(app: Application, db: Database) -> None:  # type: ignore[type-arg]
    """One sweep, as the bot's job runs it, and its notices on their way."""
    await sweep(db, policy.current())
    portal_of(app).sender.wake()


def _count(user: SimUser, text: str) -> int:
    """Notices with `text` (not the views, whose header says what comes next)."""
    return sum(text in m.text for m in user.bot_messages if not m.text.startswith("👥 Viewing"))


async def test_a_parent_sees_each_notice_and_change_as_their_child_turns_12_14_and_18(
    server: BotAPIServer,
    app: Application,
    bot_db: Database,
    db_path: Path,  # type: ignore[type-arg]
) -> None:
    mum, doctor = server.user(700, "Ann"), server.user(DOCTOR, "Dr Rao")
    with clock.use(FixedClock(at(2027, 1, 15, 9))) as fixed:
        await make_practitioner(bot_db, DOCTOR)
        await doctor.send("/start")  # a chat with the bot, as every practitioner has
        await mum.open_link(await make_invite(bot_db, "Ann Lee", invited_by=DOCTOR))
        await mum.send("3/2/1985")
        mum_id = await _patient_id(bot_db, 700)
        mia, _grant = await access.create_dependent(
            bot_db,
            mum_id,
            "Mia Lee",
            MIA_BORN,
            AccessRequest("Mia Lee", Relationship.DAUGHTER, None, Level.CLINICAL, Role.EDIT),
        )
        async with bot_db.transaction() as conn:
            await portal.add_record(
                conn, mia.id, dt.date(2026, 3, 1), "immunisation", "Influenza vaccine", ""
            )
        # Mia is 11: Mum sees her clinical records.
        await mum.send("/switch")
        await mum.tap("Mia Lee (Daughter) · Clinical")
        assert "Influenza vaccine" in (await mum.send("/records"))[-1].text

        # 30 days before Mia turns 12, the sweep tells Mum what will change.
        fixed.set(at(2027, 5, 11, 9))
        await _swept(app, bot_db)
        ahead = await mum.wait_for("On 10 Jun 2027 Mia Lee turns 12")
        assert ahead.text == (
            "On 10 Jun 2027 Mia Lee turns 12. From then on your access to their portal is "
            "Administrative (appointments and invoices); their clinical records need Mia Lee's "
            "approval, once they have their own login."
        )
        await _swept(app, bot_db)  # a second run tells nobody twice
        await server.wait_idle()
        assert _count(mum, "turns 12") == 1

        # The minute she turns 12 her records are closed to Mum, before any sweep.
        fixed.set(at(2027, 6, 9, 23, 59))
        assert "Influenza vaccine" in (await mum.send("/records"))[-1].text
        fixed.set(at(2027, 6, 10, 0, 1))
        refused = (await mum.send("/records"))[-1].text
        assert refused.startswith("👥 Viewing: Mia Lee (Daughter) · Administrative, Edit")
        assert "Influenza vaccine" not in refused and "not shared with you" in refused
        await _swept(app, bot_db)
        done = await mum.wait_for("turned 12")
        assert "your access to their portal is now Administrative" in done.text

        # 14, and no login yet: the practitioner who invited Mum is asked to invite Mia.
        fixed.set(at(2029, 6, 10, 9))
        await _swept(app, bot_db)
        asked = await doctor.wait_for("own login")
        assert asked.text == (
            "Mia Lee (born 10 Jun 2015) has turned 14 and can now have their own login to the "
            "portal. Please send them an invite with /invite."
        )
        told = await mum.wait_for("turned 14")
        assert "The practice has been asked to send them an invite." in told.text

        # 30 days before 18, through the command line, as an operator would run it.
        fixed.set(at(2033, 5, 11, 9))
        result = await asyncio.to_thread(
            run_cli,
            "sweep",
            "--at",
            "2033-05-11T09:00",
            env={"PORTAL_DB_PATH": str(db_path)},
        )
        assert result.returncode == 0, result.stderr
        assert "rule adult, 30 days ahead" in result.stdout, result.stdout
        assert "queued 1 notices" in result.stdout
        ending = await mum.wait_for("On 10 Jun 2033 Mia Lee turns 18")
        assert "your access to their portal ends, unless Mia Lee chooses to keep it" in ending.text
        again = await asyncio.to_thread(
            run_cli, "sweep", "--at", "2033-05-11T09:00", env={"PORTAL_DB_PATH": str(db_path)}
        )
        assert "made 0 changes, queued 0 notices" in again.stdout

        # 18: Mum's access ends at midnight; the sweep records it and tells her, and asks
        # the practice to invite Mia, whose account Mum no longer manages.
        fixed.set(at(2033, 6, 10, 0, 1))
        lost, home = await mum.send("/appointments", expect=2)
        assert lost.text.startswith("Your access to Mia Lee's portal has expired")
        assert home.text.startswith("👤 Viewing: your own portal")
        await _swept(app, bot_db)
        assert "your access to their portal has ended" in (await mum.wait_for("turned 18")).text
        assert "you no longer manage their account" in (await mum.wait_for("no longer manage")).text
        assert (
            "the person who managed their account no longer does"
            in (await doctor.wait_for("turned 18")).text
        )
        await _swept(app, bot_db)
        await server.wait_idle()
        for text in ("turns 12", "turned 12", "turned 14", "turns 18", "turned 18"):
            assert _count(mum, text) == (2 if text == "turned 18" else 1), (text, mum.transcript())
        async with bot_db.read() as conn:
            events = [
                (e.action, e.detail)
                for e in await audit.for_subject(conn, mia.id)
                if e.action.startswith(("grant.limited", "grant.ended", "patient.own", "patient.h"))
            ]
        assert sorted(events) == [
            ("grant.ended_by_policy", "adult"),
            ("grant.limited_by_policy", "teen"),
            ("patient.holder_ended", "adult"),
            ("patient.own_login_offered", "own_login"),
        ]


async def test_access_between_adults_ends_at_its_end_date_and_both_are_told_once(
    server: BotAPIServer,
    app: Application,
    bot_db: Database,  # type: ignore[type-arg]
) -> None:
    ann, bob = server.user(700, "Ann"), server.user(701, "Bob")
    approved = at(2026, 3, 2, 10)
    with clock.use(FixedClock(approved)) as fixed:
        await signed_in(bot_db, ann, "Ann Lee", email="ann@example.com")
        await signed_in(bot_db, bob, "Bob Lee", dt.date(1984, 6, 1), email="bob@example.com")
        ann_id, bob_id = await _patient_id(bot_db, 700), await _patient_id(bot_db, 701)
        ask = AccessRequest("Ann", Relationship.PARTNER, None, Level.CLINICAL, Role.VIEW)
        sent = await access.request_by_email(bot_db, bob_id, "ann@example.com", ask, 14)
        assert sent.grant is not None
        portal_of(app).sender.wake()
        card = await ann.wait_for("asks to access your patient portal")
        await ann.tap("✅ Approve", message=card)
        async with bot_db.transaction() as conn:
            await portal.add_record(conn, ann_id, dt.date(2026, 1, 5), "result", "HbA1c", "5.4")
        ends = int(approved.timestamp()) + 548 * DAY
        await bob.send("/switch")
        await bob.tap("Ann Lee (Partner) · Clinical")

        # A week before: both hear, once, however often the sweep runs.
        fixed.set(dt.datetime.fromtimestamp(ends - 7 * DAY, SYDNEY))
        await _swept(app, bot_db)
        await _swept(app, bot_db)
        to_bob = await bob.wait_for("Only Ann Lee can renew it")
        assert to_bob.text.startswith("Your access to Ann Lee's portal ends on 1 Sept 2027.")
        to_ann = await ann.wait_for("To keep it, renew it in /access")
        assert to_ann.text.startswith("Bob Lee's access to your portal ends on 1 Sept 2027.")
        await server.wait_idle()
        assert _count(bob, "Only Ann Lee can renew it") == 1
        assert _count(ann, "To keep it, renew it") == 1

        # The minute before the end, still there; the minute after, refused.
        fixed.set(dt.datetime.fromtimestamp(ends - 60, SYDNEY))
        assert "HbA1c" in (await bob.send("/records"))[-1].text
        fixed.set(dt.datetime.fromtimestamp(ends + 60, SYDNEY))
        lost, home = await bob.send("/records", expect=2)
        assert lost.text.startswith("Your access to Ann Lee's portal has expired")
        assert home.text.startswith("👤 Viewing: your own portal") and "HbA1c" not in home.text
        await _swept(app, bot_db)
        assert "reached its end date" in (await bob.wait_for("reached its end date")).text
        assert (
            "Bob Lee's access to the portal of Ann Lee reached its end date"
            in (await ann.wait_for("reached its end date")).text
        )
        async with bot_db.read() as conn:
            ended = await audit.by_action(conn, Action.POLICY_ENDED)
        assert [(e.subject_patient_id, e.detail) for e in ended] == [(ann_id, "term")]
        await ann.send("/activity")
        assert "The practice's policy ended Bob Lee's access (rule: end date)" in (ann.last.text)
