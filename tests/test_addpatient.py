"""/addpatient and one-tap approvals, end to end over real HTTP."""

from __future__ import annotations

import datetime as dt

from bot.callbacks import ApproveAs, ApproveRequest, DenyRequest
from storage import Database, audit, grants
from storage.vocabulary import Level, Role
from tests.botapi import BotAPIServer, SimUser
from tests.helpers import make_invite, signed_in


async def _count_grants(db: Database) -> int:
    async with db.read() as conn:
        cur = await conn.execute("SELECT count(*) FROM grants")
        return int((await cur.fetchone())[0])


async def _ask_for(
    user: SimUser,
    name: str,
    email: str,
    rel: str = "Partner",
    level: str = "Clinical",
    role: str = "Edit",
    expect: int = 1,
) -> None:
    await user.send("/addpatient")
    await user.send(name)
    await user.tap(rel)
    await user.tap(level)
    await user.tap(role)
    await user.tap("Yes, they have a login")
    await user.send(email)
    assert "Please check" in user.last.text
    await user.tap("✅ Confirm", expect=expect)


async def test_a_parent_adds_a_new_dependent_in_eight_steps(
    server: BotAPIServer, bot_db: Database
) -> None:
    mum = server.user(700, "Ann")
    await signed_in(bot_db, mum, "Ann Lee")
    steps = 0
    await mum.send("/addpatient")
    steps += 1
    assert "full name" in mum.last.text
    await mum.send("Mia Lee")
    steps += 1
    assert "What is Mia Lee to you?" in mum.last.text
    assert mum.last.labels[:7] == [
        "Child",
        "Daughter",
        "Son",
        "Parent",
        "Partner",
        "Carer",
        "Other",
    ]
    await mum.tap("Daughter")
    steps += 1
    assert "Clinical" in mum.last.text and "no clinical records" in mum.last.text
    await mum.tap("Clinical")
    steps += 1
    assert "look only" in mum.last.text
    await mum.tap("Edit")
    steps += 1
    assert "own portal login" in mum.last.text
    await mum.tap("No, create an account for them")
    steps += 1
    assert "Mia Lee's date of birth" in mum.last.text
    await mum.send("3/5/2018")
    steps += 1
    summary = mum.last.text
    assert "Name: Mia Lee" in summary and "Relationship: Daughter" in summary
    assert "Born: 3 May 2018" in summary and "grant you this access" in summary
    await mum.tap("✅ Confirm")
    steps += 1
    assert "Mia Lee's account is ready" in mum.last.text and "Clinical, Edit" in mum.last.text
    assert steps <= 8
    await mum.send("/start")
    assert "Mia Lee (Daughter) · Clinical, Edit" in mum.last.text
    async with bot_db.read() as conn:
        cur = await conn.execute("SELECT id FROM patients WHERE full_name = 'Mia Lee'")
        mia = (await cur.fetchone())[0]
        actions = [e.action for e in await audit.for_subject(conn, mia)]
    assert sorted(actions) == ["grant.approved", "grant.requested", "patient.dependent_created"]
    # A second child, straight from the parent's own portal.
    await mum.send("/addpatient")
    await mum.send("Leo Lee")
    await mum.tap("Son")
    await mum.tap("Administrative")
    await mum.tap("View")
    await mum.tap("No, create an account for them")
    await mum.send("2020-01-09")
    await mum.tap("✅ Confirm")
    await mum.send("/start")
    assert "Leo Lee (Son) · Administrative, View" in mum.last.text
    assert "Mia Lee (Daughter)" in mum.last.text
    assert not server.errors, server.errors


async def test_the_owner_approves_a_request_with_one_tap(
    server: BotAPIServer, bot_db: Database
) -> None:
    ann = server.user(700, "Ann")
    bob = server.user(701, "Bob")
    await signed_in(bot_db, ann, "Ann Lee")
    await signed_in(bot_db, bob, "Bob Lee", dt.date(1984, 6, 1), email="bob@example.com")
    await _ask_for(ann, "Bob", "bob@example.com", expect=1)
    assert "If this email belongs to a portal account" in ann.last.text
    await server.wait_idle()
    card = bob.last
    assert "Ann Lee asks to access your patient portal" in card.text
    assert "Relationship: Partner" in card.text and "Access: Clinical" in card.text
    assert card.labels == ["✅ Approve", "❌ Deny", "Approve with changes…"]
    await bob.tap("✅ Approve", message=card)
    await server.wait_idle()
    assert bob.last is card and "✅ Approved: Clinical, Edit." in card.text and card.buttons == []
    assert bob.alerts[-1] == ("Done.", False)
    assert "Bob Lee approved your request: Clinical, Edit." in ann.last.text
    await ann.send("/start")
    assert "Bob Lee (Partner) · Clinical, Edit" in ann.last.text


async def test_the_owner_denies(server: BotAPIServer, bot_db: Database) -> None:
    ann = server.user(700, "Ann")
    bob = server.user(701, "Bob")
    await signed_in(bot_db, ann, "Ann Lee")
    await signed_in(bot_db, bob, "Bob Lee", dt.date(1984, 6, 1), email="bob@example.com")
    await _ask_for(ann, "Bobby", "BOB@example.com")
    await server.wait_idle()
    await bob.tap("❌ Deny")
    await server.wait_idle()
    assert "❌ Declined." in bob.last.text
    assert "Your request to access the portal of Bobby was declined." in ann.last.text
    await ann.send("/start")
    assert "Patients you access" not in ann.last.text


async def test_approve_with_lower_access(server: BotAPIServer, bot_db: Database) -> None:
    ann = server.user(700, "Ann")
    bob = server.user(701, "Bob")
    await signed_in(bot_db, ann, "Ann Lee")
    await signed_in(bot_db, bob, "Bob Lee", dt.date(1984, 6, 1), email="bob@example.com")
    await _ask_for(ann, "Bob", "bob@example.com", level="Clinical", role="Edit")
    await server.wait_idle()
    card = bob.last
    await bob.tap("Approve with changes…", message=card)
    assert card.labels == [
        "Approve as Clinical, View",
        "Approve as Administrative, Edit",
        "Approve as Administrative, View",
        "◀ Back",
    ]
    await bob.tap("◀ Back", message=card)
    assert card.labels[0] == "✅ Approve"
    await bob.tap("Approve with changes…", message=card)
    await bob.tap("Approve as Administrative, View", message=card)
    await server.wait_idle()
    assert "Approved: Administrative, View." in card.text
    assert "Bob Lee approved your request: Administrative, View." in ann.last.text
    # Forged raising of the level is refused by the server.
    await _ask_for(bob, "Ann", "nobody-else@example.com")
    async with bot_db.read() as conn:
        cur = await conn.execute("SELECT id FROM grants WHERE status = 'active'")
        grant_id = (await cur.fetchone())[0]
    await bob.tap_data(ApproveAs(grant_id, Level.CLINICAL, Role.EDIT).encode(), message=card)
    assert bob.alerts[-1][1] is True
    async with bot_db.read() as conn:
        grant = await grants.get(conn, grant_id)
    assert grant is not None and (grant.level, grant.role) == ("administrative", "view")


async def test_a_request_waits_for_an_owner_who_is_not_signed_in_yet(
    server: BotAPIServer, bot_db: Database
) -> None:
    ann = server.user(700, "Ann")
    await signed_in(bot_db, ann, "Ann Lee")
    link = await make_invite(bot_db, "Bob Lee", dt.date(1984, 6, 1), "bob@example.com")
    await _ask_for(ann, "Bob", "bob@example.com")
    bob = server.user(701, "Bob")
    await bob.open_link(link)
    await bob.send("1/6/1984", expect=2)
    assert "You're now signed in" in bob.bot_messages[-2].text
    assert "Ann Lee asks to access your patient portal" in bob.last.text
    await bob.tap("✅ Approve")
    await server.wait_idle()
    assert "Bob Lee approved your request" in ann.last.text


async def test_a_request_to_an_email_nobody_has_yet_reaches_them_when_they_join(
    server: BotAPIServer, bot_db: Database
) -> None:
    ann = server.user(700, "Ann")
    await signed_in(bot_db, ann, "Ann Lee")
    await _ask_for(ann, "Zoe", "zoe@example.com")
    known_reply = ann.last.text
    await server.wait_idle()
    # Same words as for a known email; nothing went to anyone else.
    assert "If this email belongs to a portal account" in known_reply
    assert [
        m for m in server.calls if m[0] == "sendMessage" and m[1].get("chat_id") not in (700, "700")
    ] == []
    zoe = server.user(702, "Zoe")
    link = await make_invite(bot_db, "Zoe Park", dt.date(1999, 9, 9), "zoe@example.com")
    await zoe.open_link(link)
    await zoe.send("9/9/1999", expect=2)
    assert "Ann Lee asks to access your patient portal" in zoe.last.text


async def test_unknown_and_known_emails_get_the_same_reply(
    server: BotAPIServer, bot_db: Database
) -> None:
    ann = server.user(700, "Ann")
    bob = server.user(701, "Bob")
    await signed_in(bot_db, ann, "Ann Lee")
    await signed_in(bot_db, bob, "Bob Lee", dt.date(1984, 6, 1), email="bob@example.com")
    await _ask_for(ann, "Bob", "bob@example.com")
    to_known = ann.last.text
    await _ask_for(ann, "Who", "who@example.com")
    assert ann.last.text == to_known
    await _ask_for(ann, "Bob", "bob@example.com")
    assert "already have access to this patient, or a request" in ann.last.text
    assert await _count_grants(bot_db) == 2


async def test_a_forged_approval_by_a_third_user_changes_nothing(
    server: BotAPIServer, bot_db: Database
) -> None:
    ann = server.user(700, "Ann")
    bob = server.user(701, "Bob")
    eve = server.user(666, "Eve")
    await signed_in(bot_db, ann, "Ann Lee")
    await signed_in(bot_db, bob, "Bob Lee", dt.date(1984, 6, 1), email="bob@example.com")
    await signed_in(bot_db, eve, "Eve Vil", dt.date(1970, 1, 1))
    await _ask_for(ann, "Bob", "bob@example.com")
    async with bot_db.read() as conn:
        cur = await conn.execute("SELECT id FROM grants")
        grant_id = (await cur.fetchone())[0]
    await eve.tap_data(ApproveRequest(grant_id).encode(), message=eve.last)
    assert eve.alerts[-1] == ("This request isn't yours to decide.", True)
    await ann.tap_data(
        ApproveRequest(grant_id).encode(), message=ann.last
    )  # the requester can't approve either
    assert ann.alerts[-1] == ("This request isn't yours to decide.", True)
    stranger = server.user(667, "Nobody")
    await stranger.send("/start")
    await stranger.tap_data(ApproveRequest(grant_id).encode())
    assert stranger.alerts[-1][1] is True
    for junk in ("ap:ok:abc", "ap:ok:99999999", "ap:zz:1", "ap:ok:1:xx"):
        await eve.tap_data(junk, message=eve.last)
        assert eve.alerts[-1][1] is True
    async with bot_db.read() as conn:
        grant = await grants.get(conn, grant_id)
        refused = await audit.by_action(conn, "grant.decide")
    assert grant is not None and grant.status == "pending"
    assert len(refused) >= 2


async def test_a_double_tap_decides_once(server: BotAPIServer, bot_db: Database) -> None:
    ann = server.user(700, "Ann")
    bob = server.user(701, "Bob")
    await signed_in(bot_db, ann, "Ann Lee")
    await signed_in(bot_db, bob, "Bob Lee", dt.date(1984, 6, 1), email="bob@example.com")
    await _ask_for(ann, "Bob", "bob@example.com")
    await server.wait_idle()
    card = bob.last
    await bob.tap("✅ Approve", message=card)
    await bob.tap_data(
        card.markup_json[0][0]["callback_data"] if card.markup_json else ApproveRequest(1).encode(),
        message=card,
    )
    await bob.tap_data(DenyRequest(1).encode(), message=card)
    assert bob.alerts[-1] == ("Approved: Clinical, Edit.", True)
    async with bot_db.read() as conn:
        assert len(await audit.by_action(conn, "grant.approved")) == 1
        assert not await audit.by_action(conn, "grant.denied")
    told = [m for m in ann.bot_messages if "approved your request" in m.text]
    assert len(told) == 1


async def test_you_cannot_ask_for_yourself(server: BotAPIServer, bot_db: Database) -> None:
    ann = server.user(700, "Ann")
    await signed_in(bot_db, ann, "Ann Lee", email="ann@example.com")
    await _ask_for(ann, "Me", "Ann@Example.com")
    assert "email of your own login" in ann.last.text
    await ann.send("bob@example.com")
    assert "Please check" in ann.last.text


async def test_back_cancel_and_change_at_every_step(server: BotAPIServer, bot_db: Database) -> None:
    ann = server.user(700, "Ann")
    await signed_in(bot_db, ann, "Ann Lee")
    await ann.send("/addpatient")
    await ann.send("\u0007bad")
    assert "full name" in ann.last.text
    await ann.send("x" * 101)
    assert "up to 100" in ann.last.text
    await ann.send("Mia Lee")
    await ann.send("Daughter")  # typed where buttons are expected
    assert "choose one of the buttons" in ann.bot_messages[-2].text
    assert "What is Mia Lee to you?" in ann.last.text
    await ann.tap("Other")
    await ann.send("godchild")
    assert "Which access" in ann.last.text
    await ann.tap("◀ Back")
    assert "In a word or two" in ann.last.text
    await ann.tap("◀ Back")
    assert "What is Mia Lee to you?" in ann.last.text
    await ann.tap("Child")
    await ann.tap("Clinical")
    await ann.tap("◀ Back")
    assert "Which access" in ann.last.text
    await ann.tap("Administrative")
    await ann.tap("View")
    await ann.tap("No, create an account for them")
    await ann.send("31/02/2018")
    assert "couldn't read that" in ann.last.text
    await ann.send("1/1/2099")
    assert "couldn't read that" in ann.last.text
    await ann.send("1/2/2018")
    assert "Relationship: Child" in ann.last.text
    await ann.tap("✏️ Change")
    await ann.tap("Role")
    await ann.tap("Edit")
    assert "Role: Edit" in ann.last.text and "Please check" in ann.last.text
    await ann.tap("✏️ Change")
    await ann.tap("Name")
    await ann.send("Mia Rose Lee")
    assert "Name: Mia Rose Lee" in ann.last.text
    await ann.send("/switch")
    assert "You're adding a patient" in ann.last.text
    cancelled = await ann.tap("Cancel")
    assert "Nothing was sent or created" in cancelled[-1].text and cancelled[-1].buttons == []
    await ann.tap_data("add:ok")  # Confirm after cancelling: a dead button
    assert ann.alerts[-1] == ("This button is no longer active.", True)
    await ann.send("/addpatient")
    await ann.send("/cancel")
    assert "Nothing was sent or created" in ann.last.text
    assert await _count_grants(bot_db) == 0


async def test_adding_needs_a_signed_in_patient(server: BotAPIServer, bot_db: Database) -> None:
    guest = server.user(900, "Guest")
    await guest.send("/addpatient")
    assert "sign in first" in guest.last.text
