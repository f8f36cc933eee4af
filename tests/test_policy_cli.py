"""`python -m bot sweep` and `python -m bot access` as an operator runs them."""

from __future__ import annotations

import datetime as dt
import sqlite3
import zoneinfo
from pathlib import Path

from bot import access, invitations
from bot.access import AccessRequest
from bot.invitations import InviteRequest, InviteState
from storage import Database, clock
from storage.clock import FixedClock
from storage.vocabulary import Level, Relationship, Role
from tests.test_cli import run_cli

SYDNEY = zoneinfo.ZoneInfo("Australia/Sydney")
# The day the world below is made: the lists say what the policy allows then, whatever
# the real date (Mia turns 12 in June 2027; Bob's access ends in September 2027).
AT = ("--at", "2026-03-02T10:00")


async def _arranged(path: Path) -> tuple[int, int, int]:
    """Ann (signed in) holds Mia, born 10 June 2015; Bob accesses Ann. Made in 2026."""
    db = Database(path)
    await db.migrate()
    try:
        with clock.use(FixedClock(dt.datetime(2026, 3, 2, 10, tzinfo=SYDNEY))):
            born = dt.date(1985, 2, 3)
            ids = []
            for tg, (name, email) in enumerate(
                (("Ann Lee", "ann@example.com"), ("Bob Lee", "bob@example.com")), start=700
            ):
                new = await invitations.create_invite(db, InviteRequest(name, born, email), 14)
                signed = await invitations.sign_in(db, new.invite.id, tg, "en", born)
                assert signed.state is InviteState.VALID
                ids.append(new.patient.id)
            ann, bob = ids
            mia, _ = await access.create_dependent(
                db,
                ann,
                "Mia Lee",
                dt.date(2015, 6, 10),
                AccessRequest("Mia Lee", Relationship.DAUGHTER, None, Level.CLINICAL, Role.EDIT),
            )
            ask = AccessRequest("Ann", Relationship.PARTNER, None, Level.CLINICAL, Role.VIEW)
            sent = await access.request_by_email(db, bob, "ann@example.com", ask, 14)
            assert sent.grant is not None
            await access.decide(db, sent.grant.id, ann, True)
            return ann, mia.id, sent.grant.id
    finally:
        await db.close()


async def test_access_lists_who_has_access_with_the_next_rule_and_suspends_one(
    tmp_path: Path,
) -> None:
    path = tmp_path / "p.db"
    _ann, mia, bobs = await _arranged(path)
    env = {"PORTAL_DB_PATH": str(path)}
    listed = run_cli("access", "--patient", str(mia), *AT, env=env)
    assert listed.returncode == 0, listed.stderr
    assert f"Mia Lee (patient {mia}, born 2015-06-10): 1 with access" in listed.stdout
    assert "Ann Lee" in listed.stdout and "clinical/edit" in listed.stdout
    assert "until 2027-06-10 (Mia Lee turns 12: Clinical becomes Administrative)" in (listed.stdout)
    by_email = run_cli("access", "--patient", "ann@example.com", *AT, env=env)
    assert f"grant {bobs}: Bob Lee" in by_email.stdout
    assert "until 2027-09-01 (its end date)" in by_email.stdout

    wrong = run_cli("access", "--patient", str(mia), "--suspend", str(bobs), *AT, env=env)
    assert wrong.returncode == 1 and "no access with grant id" in wrong.stderr
    done = run_cli("access", "--patient", "ann@example.com", "--suspend", str(bobs), *AT, env=env)
    assert done.returncode == 0, done.stderr
    assert "access ended; those concerned are told it ended, not who asked" in done.stdout
    assert "0 with access" in done.stdout
    again = run_cli("access", "--suspend", str(bobs), *AT, env=env)
    assert again.returncode == 0 and "is not active; nothing changed" in again.stdout
    with sqlite3.connect(path) as conn:
        kinds = [r[0] for r in conn.execute("SELECT kind FROM outbox ORDER BY id")]
    assert kinds.count("access_ended_quietly") == 2
    assert run_cli("access", env=env).returncode == 2
    assert run_cli("access", "--patient", "nobody@example.com", env=env).returncode == 1


async def test_sweep_dry_run_then_for_real_then_again(tmp_path: Path) -> None:
    path = tmp_path / "p.db"
    await _arranged(path)
    env = {"PORTAL_DB_PATH": str(path)}
    dry = run_cli("sweep", "--at", "2027-06-10T09:00", "--dry-run", env=env)
    assert dry.returncode == 0, dry.stderr
    assert "Policy sweep as at 2027-06-10 09:00 (Australia/Sydney), dry run" in dry.stdout
    assert "would make 1 changes" in dry.stdout
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT count(*) FROM policy_steps").fetchone()[0] == 0
    real = run_cli("sweep", "--at", "2027-06-10T09:00+10:00", env=env)
    assert "change: limited to administrative: Ann Lee's access to Mia Lee" in real.stdout
    assert "made 1 changes" in real.stdout
    assert (
        "made 0 changes, queued 0 notices" in run_cli("sweep", "--at", "2027-06-10", env=env).stdout
    )
    bad = run_cli("sweep", "--at", "next tuesday", env=env)
    assert bad.returncode == 2
    assert bad.stderr.strip() == (
        "error: --at 'next tuesday' is not an ISO date and time, e.g. 2027-03-01T09:00"
    )
