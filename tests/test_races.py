"""Two bot workers on one database, as during a rolling restart: every decision once.

Each worker is the real Application from bot.app, polling its own Bot API emulator (two
pollers on one token would get 409 from Telegram), and both share one SQLite file. The
same user exists on both emulators and taps the same button on both at the same moment,
which is what a redelivered update looks like to two workers. The database, not the
handler, must make sure exactly one of the two taps decides.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import sqlite3
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from bot import access, invitations
from bot.access import AccessRequest
from bot.app import build_application, running
from bot.callbacks import ApproveRequest, DenyRequest
from bot.context import portal as portal_of
from bot.invitations import InviteRequest, InviteState
from storage import Database, audit, grants, portal
from storage.db import CHECKPOINT_EVERY, now
from storage.vocabulary import Level, Relationship, Role
from tests.botapi import BotAPIServer, Msg, SimUser
from tests.helpers import outbox_settled, settings_for

pytestmark = pytest.mark.both_backends

ROUNDS = 30
ANN_TG, BOB_TG = 700, 701
ANN_EMAIL = "ann@example.com"
DOB = dt.date(1985, 2, 3)
ASK = AccessRequest("Ann", Relationship.PARTNER, None, Level.CLINICAL, Role.EDIT)
OOPS = "Something went wrong"


def _decision(approve: bool, grant_id: int) -> str:
    return (ApproveRequest(grant_id) if approve else DenyRequest(grant_id)).encode()


@dataclass
class Workers:
    servers: tuple[BotAPIServer, BotAPIServer]
    db: Database  # worker A's own handle, for arranging and checking


@pytest.fixture
async def workers(db_path: Path) -> AsyncIterator[Workers]:
    a, b = (
        BotAPIServer(bot_username="portal_test_bot"),
        BotAPIServer(bot_username="portal_test_bot"),
    )
    await a.start()
    await b.start()
    try:
        async with (
            running(build_application(settings_for(a, db_path)), poll_timeout=1) as app_a,
            running(build_application(settings_for(b, db_path)), poll_timeout=1),
        ):
            yield Workers((a, b), portal_of(app_a).db)
    finally:
        await a.stop()
        await b.stop()


async def _signed_in(db: Database, name: str, email: str, tg: int) -> int:
    new = await invitations.create_invite(db, InviteRequest(name, DOB, email), ttl_days=14)
    assert (await invitations.sign_in(db, new.invite.id, tg, "en", DOB)).state is InviteState.VALID
    return new.patient.id


async def _twice(w: Workers, tg: int, name: str) -> tuple[SimUser, SimUser]:
    """The same Telegram user on both emulators, each chat opened with /start."""
    users = (w.servers[0].user(tg, name), w.servers[1].user(tg, name))
    await asyncio.gather(*(u.send("/start") for u in users))
    return users


async def _fresh_messages(users: tuple[SimUser, SimUser]) -> list[Msg]:
    """A new bot message in each chat to tap on, so that no edit repeats an earlier text."""
    await asyncio.gather(*(u.send("/start") for u in users))
    return [u.last for u in users]


async def _tap_both(
    w: Workers, users: tuple[SimUser, SimUser], data: tuple[str, str], first: int
) -> list[tuple[str | None, bool]]:
    """Both workers get the tap at once; the one callback answer each chat received.

    `first` says whose tap is queued first: two workers in one process share an event
    loop, so the update queued first tends to win; alternating it lets either worker win
    (the test checks both did)."""
    messages = await _fresh_messages(users)
    before = [len(u.alerts) for u in users]
    order = (first, 1 - first)
    await asyncio.gather(*(users[i].tap_data(data[i], message=messages[i]) for i in order))
    await asyncio.gather(*(s.wait_idle() for s in w.servers))
    answers = [u.alerts[n:] for u, n in zip(users, before, strict=True)]
    assert [len(a) for a in answers] == [1, 1], answers
    return [a[0] for a in answers]


def _known_to(server: BotAPIServer, error: dict[str, object]) -> bool:
    """An edit refused here of a bot message the other emulator has."""
    params = error["params"]
    assert isinstance(params, dict)
    chat = server.known_user(int(params.get("chat_id", 0)))
    message_id = params.get("message_id")
    return (
        error["method"] == "editMessageText"
        and chat is not None
        and message_id is not None
        and chat.message(int(message_id)) is not None
    )


def _decisions_told(users: tuple[SimUser, SimUser]) -> int:
    """Decision notices in these chats (revocation notices from the rounds come too)."""
    said = ("approved your request", "was declined")
    return sum(any(w in m.text for w in said) for u in users for m in u.bot_messages)


def _assert_nothing_went_wrong(
    w: Workers, users: list[SimUser], caplog: pytest.LogCaptureFixture
) -> None:
    for i, server in enumerate(w.servers):
        other = w.servers[1 - i]
        # Two emulators stand for one Telegram: a card one of them delivered is unknown to
        # the other, so the outbox's edit of it through the other is not a real refusal.
        real = [e for e in server.errors if not _known_to(other, e)]
        assert not real, real
    for user in users:
        assert all(OOPS not in (text or "") for text, _ in user.alerts), user.transcript()
        assert all(OOPS not in m.text for m in user.bot_messages), user.transcript()
    assert not [r for r in caplog.records if r.name == "portal.errors"], caplog.text


async def test_a_request_tapped_on_two_workers_is_decided_once(
    workers: Workers, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR)
    db = workers.db
    ann_id = await _signed_in(db, "Ann Lee", ANN_EMAIL, ANN_TG)
    bob_id = await _signed_in(db, "Bob Lee", "bob@example.com", BOB_TG)
    ann = await _twice(workers, ANN_TG, "Ann")
    bob = await _twice(workers, BOB_TG, "Bob")
    winners = []
    for n in range(ROUNDS):
        # Same verb on both (a redelivered tap), or Approve on one and Deny on the other.
        verbs = [(True, True), (True, False), (False, True), (False, False)][n % 4]
        sent = await access.request_by_email(db, bob_id, ANN_EMAIL, ASK, ttl_days=14)
        assert sent.grant is not None and sent.decider_id == ann_id
        grant_id = sent.grant.id
        told_before = _decisions_told(bob)

        answers = await _tap_both(
            workers, ann, (_decision(verbs[0], grant_id), _decision(verbs[1], grant_id)), n // 4 % 2
        )

        won = [i for i, answer in enumerate(answers) if answer == ("Done.", False)]
        assert len(won) == 1, (n, answers)
        winner = won[0]
        winners.append(winner)
        status = "active" if verbs[winner] else "denied"
        async with db.read() as conn:
            grant = await grants.get(conn, grant_id)
            approved = await audit.by_action(conn, "grant.approved")
            denied = await audit.by_action(conn, "grant.denied")
        assert grant is not None and grant.status == status, (n, verbs, winner, grant)
        decisions = [e for e in (*approved, *denied) if e.ref_id == grant_id]
        assert len(decisions) == 1, (n, decisions)
        assert decisions[0].action == ("grant.approved" if status == "active" else "grant.denied")
        # The loser is told what actually happened, in an alert.
        outcome = "Approved: Clinical, Edit." if status == "active" else "Declined."
        assert answers[1 - winner] == (outcome, True), (n, answers)
        # The requester hears about it once, from the worker that decided: through the
        # outbox, which may hold it back (one message a second per chat), so counted once
        # the outbox has nothing left to send.
        await outbox_settled(db)
        assert _decisions_told(bob) == told_before + 1
        if status == "active":  # so that the next round can ask again
            assert (await access.revoke(db, ann_id, grant_id)).outcome == "done"

    _assert_nothing_went_wrong(workers, [*ann, *bob], caplog)
    # Both workers won some rounds: the test really had two deciders racing.
    assert set(winners) == {0, 1}, winners


async def test_an_appointment_cancelled_on_two_workers_is_cancelled_once(
    workers: Workers, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR)
    db = workers.db
    ann_id = await _signed_in(db, "Ann Lee", ANN_EMAIL, ANN_TG)
    async with db.transaction() as conn:
        ids = []
        for n in range(ROUNDS):
            at = now() + (n + 1) * 86400
            made = await portal.add_appointment(conn, ann_id, at, at + 3600, "Dr Rao", "Room 1")
            ids.append(made.id)
    ann = await _twice(workers, ANN_TG, "Ann")
    winners = []
    for n, appointment_id in enumerate(ids):
        data = f"apt:yes:{ann_id}:{appointment_id}:0"
        answers = await _tap_both(workers, ann, (data, data), n % 2)

        won = [i for i, answer in enumerate(answers) if answer == ("Appointment cancelled.", False)]
        assert len(won) == 1, answers
        winners.append(won[0])
        assert answers[1 - won[0]] == ("This appointment has already been changed.", True)
        async with db.read() as conn:
            item = await portal.get_appointment(conn, appointment_id)
            cancelled = await audit.by_action(conn, "appointment.cancelled")
        assert item is not None and item.status == "cancelled"
        done = [e for e in cancelled if e.ref_id == appointment_id and e.outcome == "ok"]
        assert len(done) == 1, done

    _assert_nothing_went_wrong(workers, list(ann), caplog)
    assert set(winners) == {0, 1}, winners


@pytest.mark.sqlite_only
async def test_reads_do_not_wait_for_another_workers_write(db: Database) -> None:
    """Reads run on the event loop (storage/db.py), so they must never wait for a lock:
    while another worker holds the write lock mid-transaction, a read answers at once
    with what is committed. A reader that waited would fail here after its short busy
    timeout instead (as it would without WAL)."""
    async with db.transaction() as conn:
        await conn.execute(
            "INSERT INTO patients (full_name, created_at) VALUES ('Ann Lee', ?)", (now(),)
        )
    other = sqlite3.connect(db.path, isolation_level=None)
    try:
        other.execute("BEGIN EXCLUSIVE")  # in WAL mode it locks out writers only
        other.execute("INSERT INTO patients (full_name, created_at) VALUES ('Not yet', 0)")
        async with db.read() as reader:
            names = [
                row[0] for row in await reader.execute_fetchall("SELECT full_name FROM patients")
            ]
        assert names == ["Ann Lee"]
        other.execute("COMMIT")
        async with db.read() as reader:
            rows = await reader.execute_fetchall("SELECT count(*) FROM patients")
        assert next(iter(rows))[0] == 2  # and a commit is seen by the next read
    finally:
        other.close()


@pytest.mark.sqlite_only
async def test_writes_wait_for_another_workers_lock_off_the_loop(db: Database) -> None:
    """Transactions run on the event loop while the write lock is free; while another
    worker holds it, a transaction waits for it on aiosqlite's thread (the loop goes on
    serving other users), then commits. A writer on the loop that waited would stall
    everything; one that did not wait, and did not hand over, would fail."""
    loop = asyncio.get_running_loop()
    loop_thread = threading.get_ident()
    waiting = asyncio.Event()

    def traced(sql: str) -> None:
        # SQLite reports a statement as it starts: this BEGIN then waits for the lock.
        if sql == "BEGIN IMMEDIATE" and threading.get_ident() != loop_thread:
            loop.call_soon_threadsafe(waiting.set)

    async def write() -> None:
        async with db.transaction() as conn:
            await conn.execute("INSERT INTO patients (full_name, created_at) VALUES ('Ann Lee', 0)")

    other = sqlite3.connect(db.path, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        await db.set_trace_callback(traced)
        writing = asyncio.create_task(write())
        await asyncio.wait_for(waiting.wait(), 5)  # waiting on aiosqlite's thread...
        async with db.read() as reader:  # ...while the loop goes on serving
            rows = await reader.execute_fetchall("SELECT count(*) FROM patients")
        assert next(iter(rows))[0] == 0
        assert not writing.done()
        other.execute("COMMIT")
        await asyncio.wait_for(writing, 5)
    finally:
        other.close()
        await db.set_trace_callback(None)
    async with db.read() as reader:
        rows = await reader.execute_fetchall("SELECT full_name FROM patients")
    assert [row[0] for row in rows] == ["Ann Lee"]


@pytest.mark.sqlite_only
async def test_writes_run_on_the_loop_and_checkpoints_on_the_thread(db: Database) -> None:
    """Why writes are fast (storage/db.py): with the lock free, a transaction's statements
    run on the loop's own thread, not one trip to aiosqlite's thread each; and the WAL,
    which the loop's writer never copies back into the database file, is checkpointed on
    aiosqlite's thread, so it stays small."""
    # The budget below is for these commits: the migrations' frames written before them
    # are not (each new migration adds a few pages), so the WAL starts empty.
    await db.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    loop_thread = threading.get_ident()
    ran: list[tuple[str, bool]] = []  # (statement, on the loop's thread)
    await db.set_trace_callback(lambda sql: ran.append((sql, threading.get_ident() == loop_thread)))
    commits = 2 * CHECKPOINT_EVERY + 1
    for n in range(commits):
        async with db.transaction() as conn:
            await conn.execute(
                "INSERT INTO patients (full_name, created_at) VALUES (?, 0)", (f"P{n}",)
            )
        async with db.statement() as conn:
            await conn.execute(
                "UPDATE patients SET email = ? WHERE full_name = ?", (f"p{n}@e.au", f"P{n}")
            )
        await asyncio.sleep(0)  # as between updates: a checkpoint due can start
    await db.checkpointed()  # the last one, on its thread
    await db.set_trace_callback(None)
    writes = [on_loop for sql, on_loop in ran if sql.startswith(("INSERT", "UPDATE"))]
    assert len(writes) == 2 * commits and all(writes)
    checkpoints = [on_loop for sql, on_loop in ran if "wal_checkpoint" in sql]
    assert len(checkpoints) >= 2 and not any(checkpoints)
    # 802 commits of a page or more each would be over 3 MB of WAL without checkpoints.
    wal = await asyncio.to_thread(Path(f"{db.path}-wal").stat)
    assert wal.st_size < 1.5e6


@pytest.mark.sqlite_only
async def test_checkpoints_keep_up_on_a_connection_that_has_read_nothing(
    db_path: Path,
) -> None:
    """A checkpoint's statement, left open on aiosqlite's connection, would hold a read
    there and make every later checkpoint fail: the WAL would then grow for ever."""
    db = Database(db_path)
    await db.connect()  # no migrate(): aiosqlite's connection has read nothing yet
    try:
        async with db.transaction() as conn:
            await conn.execute("CREATE TABLE t (x)")
        for n in range(4 * CHECKPOINT_EVERY):
            async with db.transaction() as conn:
                await conn.execute("INSERT INTO t VALUES (?)", (n,))
            await asyncio.sleep(0)  # a checkpoint due can start
        await db.checkpointed()
        wal = await asyncio.to_thread(Path(f"{db_path}-wal").stat)
        assert wal.st_size < 1.5 * CHECKPOINT_EVERY * 4200  # a page and a header a commit
    finally:
        await db.close()


@pytest.mark.sqlite_only
async def test_the_loops_connection_refuses_writes(db: Database) -> None:
    """A write may wait for another process's lock, which on the loop would stall every
    user: writes belong in transaction() or statement(), and read() refuses them."""
    async with db.read() as reader:
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            await reader.execute_fetchall(
                "INSERT INTO patients (full_name, created_at) VALUES ('Ann Lee', 0)"
            )


@pytest.mark.sqlite_only
async def test_an_in_memory_database_reads_on_its_one_connection() -> None:
    """An in-memory database is private to its connection: a second one for reads would see
    nothing, so it reads on the writer instead."""
    db = Database(":memory:")
    await db.migrate()
    try:
        async with db.transaction() as conn:
            await conn.execute("INSERT INTO patients (full_name, created_at) VALUES ('Ann', 0)")
        async with db.read() as conn:
            rows = await conn.execute_fetchall("SELECT full_name FROM patients")
        assert [row[0] for row in rows] == ["Ann"]
    finally:
        await db.close()
