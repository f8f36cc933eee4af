"""Every invite link checks a date of birth (issue #17, item 2): a patient imported without
one is asked the date given at invite time; a date that differs from the record, or no
date at all, is refused when the invite is made. End to end and through the CLI."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import zoneinfo
from pathlib import Path
from typing import Any

import pytest

from bot import fhir, invitations
from bot.tokens import deep_link, hash_token
from storage import Database, audit, invites, logins, patients, portal
from tests.botapi import BotAPIServer
from tests.helpers import BOT, make_practitioner
from tests.test_cli import count, run_cli
from tests.test_fhir import _bundle, _resource, _write

SYDNEY = zoneinfo.ZoneInfo("Australia/Sydney")
EMAIL = "avery.testcase@example.org"  # Patient/pat-1 of tests/data/fhir/valid_bundle.json
BORN = dt.date(1980, 6, 15)


def _without_birth_date() -> dict[str, Any]:
    bundle = _bundle("valid_bundle.json")
    del _resource(bundle, "Patient/pat-1")["birthDate"]
    return bundle


async def _imported_without_birth_date(db: Database) -> int:
    await fhir.import_bundle(db, _without_birth_date(), SYDNEY)
    async with db.read() as conn:
        avery = await portal.patient_by_fhir_id(conn, "Patient/pat-1")
    assert avery is not None and avery.date_of_birth is None
    return avery.id


async def test_an_imported_patient_without_a_birth_date_is_asked_the_one_invited_with(
    server: BotAPIServer, bot_db: Database
) -> None:
    avery_id = await _imported_without_birth_date(bot_db)
    # What `python -m bot invite --name … --dob … --email …` does.
    (new,) = await invitations.create_invites(
        bot_db, [invitations.InviteRequest("Avery Testcase", BORN, EMAIL)], ttl_days=14
    )
    assert new.patient.id == avery_id and new.reused_patient
    avery = server.user(700, "Avery")
    await avery.open_link(deep_link(BOT, new.token))
    assert "please type your date of birth" in avery.last.text, avery.transcript()
    await avery.send("16/6/1980")
    assert "doesn't match our records" in avery.last.text
    async with bot_db.read() as conn:
        assert await logins.get(conn, 700) is None
    await avery.send("15/6/1980")
    assert "You're now signed in" in avery.last.text, avery.transcript()
    async with bot_db.read() as conn:
        login = await logins.get(conn, 700)
        stored = await patients.get(conn, avery_id)
    assert login is not None and login.patient_id == avery_id
    assert stored is not None and stored.date_of_birth == BORN
    await avery.send("/details")
    assert "15 June 1980" in avery.last.text or "15 Jun 1980" in avery.last.text
    assert not server.errors, server.errors


async def test_a_link_with_nothing_to_check_signs_nobody_in(
    server: BotAPIServer, bot_db: Database
) -> None:
    """An invite made before every link carried a date of birth, for a patient without one."""
    token = "A" * 43
    async with bot_db.transaction() as conn:
        nobody = await patients.create(conn, "Dana Old")
        invite = await invites.create(conn, hash_token(token), nobody.id, expires_at=2**40)
    dana = server.user(701, "Dana")
    await dana.open_link(deep_link(BOT, token))
    assert "no date of birth to check" in dana.last.text, dana.transcript()
    await dana.send("1/1/1970")
    async with bot_db.read() as conn:
        assert await logins.get(conn, 701) is None
    assert (
        await invitations.sign_in(bot_db, invite.id, 701, "en", dt.date(1970, 1, 1))
    ).state is invitations.InviteState.NO_DATE_OF_BIRTH


async def test_sign_in_itself_checks_the_date_of_birth(db: Database) -> None:
    (new,) = await invitations.create_invites(
        db, [invitations.InviteRequest("Eve Ng", BORN, None)], ttl_days=14
    )
    skipped = await invitations.sign_in(db, new.invite.id, 702, "en", dt.date(1999, 1, 1))
    assert skipped.state is not invitations.InviteState.VALID
    async with db.read() as conn:
        assert await logins.get(conn, 702) is None
    signed = await invitations.sign_in(db, new.invite.id, 702, "en", BORN)
    assert signed.state is invitations.InviteState.VALID


async def test_a_practitioner_fixes_a_differing_date_of_birth_in_chat(
    server: BotAPIServer, bot_db: Database
) -> None:
    await fhir.import_bundle(bot_db, _bundle("valid_bundle.json"), SYDNEY)  # born 15/6/1980
    await make_practitioner(bot_db, 500)
    doctor = server.user(500, "Priya")
    await doctor.send("/invite")
    await doctor.send("Avery Testcase")
    await doctor.send("16/6/1980")
    await doctor.send(EMAIL)
    text = doctor.last.text
    assert "different date of birth on record" in text and "haven't created" in text, text
    assert "1980" not in text  # the record's date is not shown
    assert doctor.last.labels == ["◀ Back", "Cancel"]
    await doctor.send("15/6/1980")
    assert "email" in doctor.last.text
    await doctor.send(EMAIL, expect=2)
    assert doctor.last.kind == "photo", doctor.transcript()
    ready = doctor.bot_messages[-2].text
    assert "Invite for Avery Testcase is ready" in ready and "already belongs" in ready
    # Refused once, then created; the patient's access log shows both.
    async with bot_db.read() as conn:
        cur = await conn.execute("SELECT count(*) FROM invites")
        assert (await cur.fetchone())[0] == 1
        avery = await portal.patient_by_fhir_id(conn, "Patient/pat-1")
        assert avery is not None
        events = [(e.action, e.outcome) for e in await audit.for_subject(conn, avery.id)]
    assert events[:2] == [("invite.created", "ok"), ("invite.created", "refused")]
    # Refused again, then cancelled: nothing is created.
    await doctor.send("/invite")
    await doctor.send("Avery Testcase")
    await doctor.send("1/1/1990")
    await doctor.send(EMAIL)
    await doctor.tap("Cancel")
    assert "Nothing was created" in doctor.last.text
    async with bot_db.read() as conn:
        cur = await conn.execute("SELECT count(*) FROM invites")
        assert (await cur.fetchone())[0] == 1
    assert not server.errors, server.errors


# --- Through the command line ----------------------------------------------------------


def _env(db: Path) -> dict[str, str]:
    return {"PORTAL_DB_PATH": str(db)}


def _invite(db: Path, *args: str) -> Any:
    return run_cli("invite", *args, "--bot-username", "b", env=_env(db))


def _one_line(result: Any) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    return str(lines[0])


def test_the_cli_refuses_a_date_of_birth_that_differs_from_the_record(tmp_path: Path) -> None:
    db = tmp_path / "p.db"
    assert run_cli("import-fhir", str(DATA_VALID), env=_env(db)).returncode == 0
    refused = _invite(db, "--name", "Avery Testcase", "--dob", "1980-06-16", "--email", EMAIL)
    assert refused.returncode == 1 and refused.stdout == ""
    line = _one_line(refused)
    assert line.startswith("error: invite: ") and "differs from the one on record" in line
    assert "1980-06-15" not in line and "no invite was created" in line
    assert count(db, "invites") == 0
    with sqlite3.connect(db) as conn:
        assert conn.execute(
            "SELECT action, outcome, detail FROM audit_events WHERE outcome = 'refused'"
        ).fetchall() == [("invite.created", "refused", "dob_differs")]
    # The same date as the record, or none (the record's is checked), makes the link.
    same = _invite(db, "--name", "Avery Testcase", "--dob", "1980-06-15", "--email", EMAIL)
    left_out = _invite(db, "--name", "Avery Testcase", "--email", EMAIL)
    assert same.returncode == 0 and left_out.returncode == 0, left_out.stderr
    assert count(db, "invites") == 2


def test_the_cli_refuses_an_invite_with_no_date_of_birth_at_all(tmp_path: Path) -> None:
    db = tmp_path / "p.db"
    new = _invite(db, "--name", "Bo Tran", "--email", "bo@example.com")
    assert new.returncode == 1 and "no date of birth for Bo Tran" in _one_line(new)
    assert count(db, "patients") == 0 and count(db, "invites") == 0
    bundle = tmp_path / "b.json"
    data = json.loads(DATA_VALID.read_text(encoding="utf-8"))  # floats: json can write them
    del _resource(data, "Patient/pat-1")["birthDate"]
    _write(bundle, data)
    assert run_cli("import-fhir", str(bundle), env=_env(db)).returncode == 0
    imported = _invite(db, "--name", "Avery Testcase", "--email", EMAIL)
    assert imported.returncode == 1
    assert "no date of birth for Avery Testcase, and none on record" in _one_line(imported)
    assert count(db, "invites") == 0
    given = _invite(db, "--name", "Avery Testcase", "--dob", "1980-06-15", "--email", EMAIL)
    assert given.returncode == 0, given.stderr
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT date_of_birth FROM invites").fetchall() == [("1980-06-15",)]


def test_a_csv_row_whose_date_of_birth_differs_is_named(tmp_path: Path) -> None:
    db = tmp_path / "p.db"
    assert run_cli("import-fhir", str(DATA_VALID), env=_env(db)).returncode == 0
    sheet = tmp_path / "patients.csv"
    sheet.write_text(
        f"name,dob,email\nAnn Lee,1985-02-03,\nAvery Testcase,1999-01-01,{EMAIL}\n",
        encoding="utf-8",
    )
    result = run_cli("invite", "--csv", str(sheet), "--bot-username", "b", env=_env(db))
    assert result.returncode == 1 and result.stdout == ""
    assert "line 3: Avery Testcase's date of birth 1999-01-01 differs" in _one_line(result)
    assert count(db, "invites") == 0 and count(db, "patients") == 2  # the two imported


@pytest.mark.parametrize("name", ["\u200b\u200b", "\u3164", "\u202e"])
def test_the_cli_refuses_a_name_that_shows_blank(tmp_path: Path, name: str) -> None:
    result = _invite(tmp_path / "p.db", "--name", name, "--dob", "1985-02-03")
    assert result.returncode == 1 and "at least one letter" in _one_line(result)


DATA_VALID = Path(__file__).resolve().parent / "data" / "fhir" / "valid_bundle.json"
