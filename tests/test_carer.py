"""A carer who accesses 500 people: the home message and /switch come a page at a time,
within Telegram's limits, and typing part of a name finds someone."""

from __future__ import annotations

import datetime as dt

from bot.callbacks import TurnHomePage
from storage import Database, grants, patients
from tests.botapi import BotAPIServer, Msg, SimUser
from tests.helpers import signed_in

# A tap on ◀ ▶ or a name is answered first, then the message is edited: two events.

PEOPLE = 500
CARER_TG = 900
ZOE = "Zoë Quill"  # the one to find, accent and all
LIMIT_TEXT, LIMIT_BUTTONS = 4096, 100


async def _carer(db: Database, server: BotAPIServer) -> SimUser:
    """Cara, signed in, accesses 500 people (Clinical, Edit): arranged in one transaction."""
    cara = server.user(CARER_TG, "Cara")
    await signed_in(db, cara, "Cara Carer", email="cara@example.com")
    async with db.read() as conn:
        rows = await conn.execute_fetchall(
            "SELECT patient_id FROM logins WHERE telegram_user_id = ?", (CARER_TG,)
        )
    cara_id = next(iter(rows))[0]
    names = [f"Resident {n:03} of the Long Name Aged Care Home, Room {n}" for n in range(1, 500)]
    async with db.transaction() as conn:
        for name in [*names, ZOE]:
            person = await patients.create(conn, name, dt.date(1940, 1, 1))
            grant = await grants.create(
                conn,
                accessor_id=cara_id,
                subject_id=person.id,
                subject_email=None,
                subject_name=name,
                relationship="carer",
                relationship_other=None,
                level="clinical",
                role="edit",
                expires_at=None,
            )
            await grants.decide(
                conn, grant.id, status="active", decided_by=cara_id, level="clinical", role="edit"
            )
    return cara


def _within_limits(user: SimUser) -> None:
    for m in user.bot_messages:
        assert len(m.text) <= LIMIT_TEXT, (m.message_id, len(m.text))
        assert len(m.labels) <= LIMIT_BUTTONS, (m.message_id, len(m.labels))


def _nothing_refused(server: BotAPIServer) -> None:
    """No limit broken: the emulator refuses what Telegram would (a page shown again
    unchanged, "not modified", is fine)."""
    refused = [e for e in server.errors if "not modified" not in e["description"]]
    assert not refused, refused


def _people(m: Msg) -> list[str]:
    return [label for label in m.labels if "(Carer)" in label]


async def test_the_home_message_pages_the_people_a_carer_accesses(
    server: BotAPIServer, bot_db: Database
) -> None:
    cara = await _carer(bot_db, server)
    home = next(m for m in await cara.send("/start") if "signed in as" in m.text)
    assert "Resident 001 of" in home.text and "Resident 011 of" not in home.text
    assert "1–10 of 500. To find someone by name, tap 🔄 Switch patient." in home.text
    assert home.labels[:2] == ["Page 1", "▶"] and "📅 Appointments" in home.labels
    await cara.tap("▶", message=home, expect=2)
    assert "Resident 011 of" in home.text and "Resident 001 of" not in home.text
    assert "11–20 of 500" in home.text and home.labels[:3] == ["◀", "Page 2", "▶"]
    await cara.tap("◀", message=home, expect=2)
    assert "Resident 001 of" in home.text and "1–10 of 500" in home.text
    await cara.tap_data(TurnHomePage(49).encode(), message=home, expect=2)  # the last page
    assert ZOE in home.text and "491–500 of 500" in home.text and "▶" not in home.labels
    # An old button, past the end: the same.
    await cara.tap_data(TurnHomePage(999).encode(), message=home)
    await server.wait_idle()
    assert "491–500 of 500" in home.text
    _within_limits(cara)
    _nothing_refused(server)


async def test_switch_pages_and_finds_someone_by_part_of_a_name(
    server: BotAPIServer, bot_db: Database
) -> None:
    cara = await _carer(bot_db, server)
    [listed] = await cara.send("/switch")
    assert "Type part of a name to find someone." in listed.text
    assert listed.labels[0] == "● Me (Cara Carer)" and len(_people(listed)) == 10
    assert _people(listed)[0].startswith("Resident 001 of") and listed.labels[-2:] == [
        "Page 1",
        "▶",
    ]
    await cara.tap("▶", message=listed, expect=2)
    assert _people(listed)[0].startswith("Resident 011 of")
    await cara.tap("▶", message=listed, expect=2)
    assert _people(listed)[0].startswith("Resident 021 of") and "Page 3" in listed.labels
    await cara.tap("◀", message=listed, expect=2)
    assert _people(listed)[0].startswith("Resident 011 of")

    # Text typed now is a name to find; case and accents do not count.
    [found] = await cara.send("zoe")
    assert "People you access with “zoe” in their name:" in found.text
    assert _people(found) == [f"{ZOE} (Carer) · Clinical"] and "Page 1" not in found.labels
    [nobody] = await cara.send("Xavier")
    assert "Nobody you access has “Xavier” in their name." in nobody.text
    assert _people(nobody) == []
    [many] = await cara.send("room 1")  # Room 1, 10-19, 100-199: 111 of them
    assert len(_people(many)) == 10 and "▶" in many.labels
    await cara.tap("▶", message=many, expect=2)
    assert all("Room 1" in label for label in _people(many)) and "Page 2" in many.labels

    await cara.tap(f"{ZOE} (Carer) · Clinical", message=found, expect=2)
    assert found.text.startswith(f"👥 Viewing: {ZOE} (Carer) · Clinical, Edit"), found.text
    # Having chosen, typed text is no longer a search.
    [reply] = await cara.send("zoe")
    assert reply.text.startswith("Sorry, I didn't understand that."), reply.text

    [direct] = await cara.send("/switch QUILL")
    assert _people(direct) == [f"● {ZOE} (Carer) · Clinical"]
    await cara.send("/help")  # another command ends the question too
    [reply] = await cara.send("quill")
    assert reply.text.startswith("Sorry, I didn't understand that."), reply.text
    _within_limits(cara)
    _nothing_refused(server)
