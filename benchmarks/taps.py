"""Section 4: taps and typed messages per journey, counted while SimUser drives the real
bot the way a person would (reading the buttons each reply offers)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable
from dataclasses import dataclass
from pathlib import Path

from benchmarks.seed import fresh
from bot import access, invitations
from bot.app import build_application, running
from bot.context import portal
from bot.settings import load_settings
from bot.tokens import deep_link
from playground.emulator import BotAPIServer, Msg, SimUser
from storage import Database, logins
from storage import portal as portal_data
from storage.db import now

BOT = "portal_taps_bot"


@dataclass
class Journey:
    key: str
    label: str
    taps: int = 0
    typed: int = 0
    reached: bool = False
    error: str | None = None

    @property
    def total(self) -> int:
        return self.taps + self.typed


class Counted:
    """A SimUser whose every tap and typed message is counted for one journey."""

    def __init__(self, user: SimUser, journey: Journey) -> None:
        self.user = user
        self.journey = journey

    async def send(self, text: str) -> list[Msg]:
        self.journey.typed += 1
        return await self.user.send(text)

    async def tap(self, label: str, message: Msg | None = None) -> list[Msg]:
        self.journey.taps += 1
        return await self.user.tap(label, message=message)


async def _sign_in(db: Database, user: SimUser, name: str, dob: dt.date, email: str) -> int:
    """Not counted: every journey starts signed in."""
    new = await invitations.create_invite(
        db, invitations.InviteRequest(name, dob, email), ttl_days=14
    )
    await user.open_link(deep_link(BOT, new.token))
    await user.send(dob.strftime("%d/%m/%Y"))
    async with db.read() as conn:
        login = await logins.get(conn, user.id)
    assert login is not None, user.transcript()
    return login.patient_id


async def _names(db: Database, patient_id: int) -> list[str]:
    return [e.other_name for e in await access.accessible(db, patient_id)]


async def count(workdir: Path) -> list[Journey]:
    path = fresh(workdir / "taps.db")
    server = BotAPIServer(bot_username=BOT)
    await server.start()
    settings = load_settings(
        bot_token=server.token,
        api_base_url=server.base_url,
        db_path=path,
        practice_name="Benchmark Practice",
    )
    link = Journey("link_dependent", "Link a new dependent (/addpatient … Confirm)")
    approve = Journey("approve", "Approve a request (the owner's taps)")
    switch = Journey("switch_view", "Switch and view (/switch → a child's appointments)")
    try:
        async with running(build_application(settings), poll_timeout=1) as app:
            db = portal(app).db
            ann = server.user(9101, "Ann")
            bob = server.user(9102, "Bob")
            ann_id = await _sign_in(db, ann, "Ann Lee", dt.date(1985, 2, 3), "ann@example.test")
            await _sign_in(db, bob, "Bob Lee", dt.date(1984, 6, 1), "bob@example.test")
            await _journey(link, _link_dependent(Counted(ann, link), db, ann_id))
            await _journey(approve, _approve(ann, Counted(bob, approve), server, db, ann_id))
            await _journey(switch, _switch_and_view(Counted(ann, switch), db, ann_id))
    finally:
        await server.stop()
    return [link, approve, switch]


async def _journey(journey: Journey, steps: Awaitable[object]) -> None:
    try:
        journey.reached = bool(await steps)
    except AssertionError as exc:  # a label changed, a reply did not come: say which
        journey.error = str(exc).splitlines()[0]


async def _link_dependent(ann: Counted, db: Database, ann_id: int) -> bool:
    await ann.send("/addpatient")
    await ann.send("Mia Lee")
    await ann.tap("Daughter")
    await ann.tap("Clinical")
    await ann.tap("Edit")
    await ann.tap("No, create an account for them")
    await ann.send("3/5/2018")
    await ann.tap("✅ Confirm")
    # Done when /switch can offer her: an active grant from Ann to the new account.
    return "Mia Lee" in await _names(db, ann_id)


async def _approve(
    ann: SimUser, bob: Counted, server: BotAPIServer, db: Database, ann_id: int
) -> bool:
    # Not counted: Ann asks for access to Bob's portal; Bob gets the request as a card.
    await ann.send("/addpatient")
    await ann.send("Bob Lee")
    await ann.tap("Partner")
    await ann.tap("Clinical")
    await ann.tap("View")
    await ann.tap("Yes, they have a login")
    await ann.send("bob@example.test")
    await ann.tap("✅ Confirm")
    await server.wait_idle()
    card = bob.user.last
    await bob.tap("✅ Approve", message=card)
    await server.wait_idle()
    return "Bob Lee" in await _names(db, ann_id)


async def _switch_and_view(ann: Counted, db: Database, ann_id: int) -> bool:
    entries = await access.accessible(db, ann_id)
    mia = next(e.grant.subject_id for e in entries if e.other_name == "Mia Lee")
    assert mia is not None
    async with db.transaction() as conn:
        at = now() + 2 * 86400
        await portal_data.add_appointment(conn, mia, at, at + 900, "Dr Tap Count", "Room 4")

    def seen() -> bool:
        text = ann.user.last.text
        return "Mia Lee" in text.split("\n", 1)[0] and "Dr Tap Count" in text

    await ann.send("/switch")
    await ann.tap("Mia Lee")
    if not seen():  # the switch landed on a menu: one more tap to the appointments
        await ann.tap("📅 Appointments")
    return seen()
