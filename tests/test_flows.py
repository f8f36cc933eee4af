"""What every flow shares (conversations/__init__.py): sharing has ◀ Back and the mid-flow
command guard like the others, and drafts stored by the previous version (plain dicts)
are read back after an upgrade, or end the flow kindly when they cannot be."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from bot import access
from bot.access import AccessRequest
from bot.app import build_application, running
from bot.context import portal
from bot.settings import Settings, load_settings
from storage import Database, logins, open_database, state
from storage.vocabulary import Level, Relationship, Role
from tests.botapi import BotAPIServer, SimUser
from tests.helpers import add_child_up_to_confirm, database_for, make_invite, signed_in

pytestmark = pytest.mark.both_backends

MIA = AccessRequest("Mia Lee", Relationship.DAUGHTER, None, Level.CLINICAL, Role.EDIT)
LOST = "I lost track of your earlier answers"


def _settings(server: BotAPIServer, db_path: Path) -> Settings:
    return load_settings(bot_token=server.token, api_base_url=server.base_url, db_path=db_path)


async def _start_sharing_mia(db: Database, ann: SimUser) -> None:
    async with db.read() as conn:
        login = await logins.get(conn, ann.id)
    assert login is not None
    await access.create_dependent(db, login.patient_id, "Mia Lee", dt.date(2016, 5, 1), MIA)
    await ann.send("/access")
    await ann.tap("Mia Lee's account ›")
    await ann.tap("Share Mia Lee with someone")


async def _rewrite_draft(db_path: Path, user_id: int, key: str, draft: object) -> None:
    """The user's stored drafts, with the one under `key` as the previous version (or a
    damaged database) left it."""
    db = open_database(database_for(db_path))
    await db.connect()
    try:
        async with db.read() as conn:
            [(_, stored, _)] = [
                r for r in await state.load(conn, "user_data") if r[0] == str(user_id)
            ]
        data = json.loads(stored)
        data[key] = draft
        async with db.transaction() as conn:
            await state.save(conn, [("user_data", "", str(user_id), json.dumps(data))])
    finally:
        await db.close()


async def test_sharing_goes_back_a_step_and_reminds_mid_flow(
    server: BotAPIServer, bot_db: Database
) -> None:
    ann = server.user(700, "Ann")
    await signed_in(bot_db, ann, "Ann Lee")
    await _start_sharing_mia(bot_db, ann)
    await ann.send("bob@example.com")
    assert "Which access should they have?" in ann.last.text
    assert ann.last.labels[-2:] == ["◀ Back", "Cancel"]
    await ann.tap("◀ Back")
    assert "What email does their portal login use?" in ann.last.text
    assert ann.last.labels == ["Cancel"]
    await ann.send("carl@example.com")
    await ann.tap("Clinical")
    await ann.tap("◀ Back")
    assert "Which access should they have?" in ann.last.text
    await ann.tap("Administrative")
    await ann.tap("View")
    assert "Offer access to Mia Lee (Administrative, View)" in ann.last.text
    await ann.tap("◀ Back")
    assert "What may they do?" in ann.last.text
    offer = ann.last
    await ann.send("/switch")  # another command: a reminder, and the question stays
    assert "You're sharing a patient's account" in ann.last.text
    assert offer.labels[-2:] == ["◀ Back", "Cancel"]
    await ann.tap("Edit", message=offer)  # edited in place into the offer
    assert "(Administrative, Edit) to the portal login carl@example.com?" in offer.text
    await ann.send("/cancel")
    assert ann.last.text == "Cancelled. Nothing was sent."
    assert not server.errors, server.errors


async def test_a_draft_stored_by_the_previous_version_is_confirmed(
    server: BotAPIServer, db_path: Path
) -> None:
    settings = _settings(server, db_path)
    ann = server.user(700, "Ann")
    async with running(build_application(settings), poll_timeout=1) as app:
        await signed_in(portal(app).db, ann, "Ann Lee")
        await add_child_up_to_confirm(ann)
        assert "Please check" in ann.last.text
    # As the previous version stored it: a dict with only the answers given, the date as
    # text. Its date differs from the one typed, to show which draft Confirm reads.
    old = {
        "key": "0123456789abcdef",
        "name": "Mia Lee",
        "relationship": "child",
        "level": "clinical",
        "role": "edit",
        "own": False,
        "dob": "2017-04-02",
    }
    await _rewrite_draft(db_path, 700, "addpatient", old)
    async with running(build_application(settings), poll_timeout=1) as app:
        await ann.tap("✅ Confirm")
        assert "Mia Lee's account is ready" in ann.last.text
        async with portal(app).db.read() as conn:
            rows = await conn.execute_fetchall(
                "SELECT date_of_birth FROM patients WHERE full_name = 'Mia Lee'"
            )
    assert [tuple(row) for row in rows] == [("2017-04-02",)]


async def test_a_sign_in_stored_by_the_previous_version_goes_on(
    server: BotAPIServer, db_path: Path
) -> None:
    settings = _settings(server, db_path)
    ann = server.user(700, "Ann")
    async with running(build_application(settings), poll_timeout=1) as app:
        await ann.open_link(await make_invite(portal(app).db, "Ann Lee", dt.date(1985, 2, 3)))
        assert "please type your date of birth" in ann.last.text
        async with portal(app).db.read() as conn:
            [(invite_id,)] = await conn.execute_fetchall("SELECT id FROM invites")
    await _rewrite_draft(db_path, 700, "signin_invite_id", invite_id)  # the id alone
    async with running(build_application(settings), poll_timeout=1):
        await ann.send("3/2/1985")
        assert "You're now signed in" in ann.last.text


async def test_a_draft_that_cannot_be_read_back_ends_the_flow_kindly(
    server: BotAPIServer, db_path: Path
) -> None:
    settings = _settings(server, db_path)
    ann = server.user(700, "Ann")
    async with running(build_application(settings), poll_timeout=1) as app:
        await signed_in(portal(app).db, ann, "Ann Lee")
        await _start_sharing_mia(portal(app).db, ann)
        await ann.send("bob@example.com")
        assert "Which access should they have?" in ann.last.text
    await _rewrite_draft(db_path, 700, "share", {"dependent": "not an id"})
    async with running(build_application(settings), poll_timeout=1):
        await ann.tap("Clinical")
        assert LOST in ann.last.text and ann.last.buttons == []
        await ann.send("/switch")  # the flow is over: commands are themselves again
        assert "You're sharing" not in ann.last.text
    assert not server.errors, server.errors
