"""One child's life from 11 to 18 through the real bot, as the parent and the young person
see it (issue #20's closing note): the sweep at each step with the clock moved, each tap the
young person makes on what the bot sends. In English and in Vietnamese. With
CHILD_LIFE_TRANSCRIPT=<file> set, the messages (text and buttons) are written there too."""

from __future__ import annotations

import datetime as dt
import os
import zoneinfo
from pathlib import Path

import pytest
from telegram.ext import Application

from bot import access, invitations, policy
from bot.access import AccessRequest
from bot.callbacks import Callback, ContinueAccess, KeepAfterAdulthood
from bot.context import portal as portal_of
from bot.sweep import sweep
from storage import Database, clock, outbox
from storage import portal as portal_data
from storage.clock import FixedClock
from storage.vocabulary import Level, Relationship, Role
from tests.botapi import BotAPIServer, Msg, SimUser
from tests.helpers import BOT, make_invite, make_practitioner

SYDNEY = zoneinfo.ZoneInfo("Australia/Sydney")
MIA_BORN = dt.date(2015, 6, 10)
DOCTOR = 900


def at(y: int, m: int, d: int, hh: int = 9) -> dt.datetime:
    return dt.datetime(y, m, d, hh, tzinfo=SYDNEY)


class Diary:
    """What each person was sent at each step: new messages, and cards edited by a tap."""

    def __init__(self, *people: SimUser) -> None:
        self.people = people
        self.seen: dict[int, dict[int, tuple[str, list[str]]]] = {p.id: {} for p in people}
        self.lines: list[str] = []

    def step(self, title: str) -> None:
        self.lines += ["", f"## {title}", ""]
        for person in self.people:
            shown = self.seen[person.id]
            new: list[Msg] = []
            for m in person.bot_messages:
                now = (m.text, m.labels)
                if shown.get(m.message_id) != now:
                    new.append(m)
                    shown[m.message_id] = now
            if not new:
                continue
            self.lines.append(f"**{person.first_name}**")
            self.lines.append("")
            for m in new:
                edited = " (edited)" if m.edited else ""
                self.lines.append(f"> {m.text}{edited}".replace("\n", "\n> "))
                if m.labels:
                    self.lines.append(">")
                    self.lines.append("> " + " ".join(f"[{label}]" for label in m.labels))
                self.lines.append("")


async def _swept(app: Application, db: Database, server: BotAPIServer) -> None:  # type: ignore[type-arg]
    """One sweep, and everything it queued sent before the clock moves on (a notice ahead
    of a change lapses once the change has come)."""
    await sweep(db, policy.current())
    async with db.read() as conn:
        due = await outbox.due(conn, 500)
    await portal_of(app).sender.deliver(row.id for row in due)
    await server.wait_idle()


def _has(m: Msg, kind: type[Callback]) -> bool:
    """Whether the message has a button of this kind (whatever its label's language)."""
    return any(kind.parse(b.callback_data) for row in m.buttons for b in row)


async def _sign_in(db: Database, user: SimUser, name: str, dob: str) -> None:
    link = await make_invite(db, name, dt.date(1985, 2, 3), invited_by=DOCTOR)
    await user.open_link(link)
    await user.send(dob)


@pytest.mark.parametrize("language", ["en", "vi"])
async def test_a_childs_life_from_11_to_18_as_the_parent_and_the_young_person_see_it(
    server: BotAPIServer,
    app: Application,  # type: ignore[type-arg]
    bot_db: Database,
    language: str,
) -> None:
    mum = server.user(700, "Ann", language)
    mia_user = server.user(710, "Mia", language)
    doctor = server.user(DOCTOR, "Dr Rao")
    diary = Diary(mum, mia_user)
    with clock.use(FixedClock(at(2027, 1, 15))) as fixed:
        await make_practitioner(bot_db, DOCTOR)
        await doctor.send("/start")
        await _sign_in(bot_db, mum, "Ann Lee", "3/2/1985")
        async with bot_db.read() as conn:
            cur = await conn.execute("SELECT patient_id FROM logins WHERE telegram_user_id = 700")
            row = await cur.fetchone()
        assert row is not None
        mum_id = int(row[0])
        mia, _grant = await access.create_dependent(
            bot_db,
            mum_id,
            "Mia Lee",
            MIA_BORN,
            AccessRequest("Mia Lee", Relationship.DAUGHTER, None, Level.CLINICAL, Role.EDIT),
        )
        async with bot_db.transaction() as conn:
            await portal_data.add_record(
                conn, mia.id, dt.date(2026, 3, 1), "immunisation", "Influenza vaccine", ""
            )
        await mum.send("/switch")
        await mum.tap("Mia Lee")
        await mum.send("/records")
        diary.step("Mia is 11 (15 Jan 2027): Ann signs in, adds Mia and looks at her records")

        fixed.set(at(2027, 5, 11))
        await _swept(app, bot_db, server)
        diary.step("30 days before Mia turns 12 (11 May 2027): sweep")

        fixed.set(at(2027, 6, 10))
        await _swept(app, bot_db, server)
        await mum.send("/records")
        diary.step("Mia turns 12 (10 Jun 2027): sweep; Ann opens /records")

        fixed.set(at(2029, 6, 10))
        await _swept(app, bot_db, server)
        diary.step("Mia turns 14 (10 Jun 2029): sweep")

        new = await invitations.create_own_login_invite(bot_db, mum_id, mia.id, 14)
        assert new is not None
        await mia_user.open_link(f"https://t.me/{BOT}?start={new.token}")
        await mia_user.send("10/6/2015")
        await _swept(app, bot_db, server)
        diary.step("Mia signs in with her own login (link from Ann); sweep")

        continues = next((m for m in mia_user.bot_messages if _has(m, ContinueAccess)), None)
        assert continues is not None, mia_user.transcript() + mum.transcript()
        await mia_user.tap(continues.labels[0], message=continues)  # ✅ Approve
        await server.wait_idle()
        diary.step("Mia approves that Ann's access continues")

        fixed.set(at(2033, 5, 11))
        await _swept(app, bot_db, server)
        keep = next((m for m in mia_user.bot_messages if _has(m, KeepAfterAdulthood)), None)
        assert keep is not None, mia_user.transcript()
        diary.step("30 days before Mia turns 18 (11 May 2033): sweep")
        await mia_user.tap(keep.labels[0], message=keep)
        await server.wait_idle()
        diary.step("Mia taps Keep on the notice")

        fixed.set(at(2033, 6, 10, 0))
        await _swept(app, bot_db, server)
        await mum.send("/appointments")
        diary.step("Mia turns 18 (10 Jun 2033): sweep; Ann opens /appointments")

    # Mia kept Ann's access: after her 18th Ann still sees her portal.
    assert mum.last.text.startswith("👥")
    out = os.environ.get("CHILD_LIFE_TRANSCRIPT")
    if out:
        _append(Path(out), f"\n# Language: {language}\n" + "\n".join(diary.lines) + "\n")


def _append(path: Path, text: str) -> None:
    with path.open("a", encoding="utf-8") as fh:
        fh.write(text)
