"""/access and /activity end to end: change, revoke, leave, withdraw, own logins, sharing."""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable

from bot import access
from bot.access import AccessRequest, Area
from bot.callbacks import (
    ApproveRequest,
    ChangeLevel,
    ChangeRole,
    GiveOwnLogin,
    OpenGrant,
    RevokeAccess,
    StopAccessing,
    TurnLogPage,
    TurnPage,
    WithdrawRequest,
)
from storage import Database, audit, grants, portal
from storage.clock import FixedClock
from storage.db import now
from storage.vocabulary import Level, Relationship, Role
from tests.botapi import BotAPIServer, Msg, SimUser
from tests.helpers import signed_in

REQ = AccessRequest("x", Relationship.PARTNER, None, Level.CLINICAL, Role.EDIT)


async def _patient_id(db: Database, telegram_id: int) -> int:
    async with db.read() as conn:
        cur = await conn.execute(
            "SELECT patient_id FROM logins WHERE telegram_user_id = ?", (telegram_id,)
        )
        return int((await cur.fetchone())[0])


async def _couple(db: Database, server: BotAPIServer) -> tuple[SimUser, SimUser, int, int, int]:
    """Bob accesses Ann (Clinical, Edit); both signed in."""
    ann, bob = server.user(700, "Ann"), server.user(701, "Bob")
    await signed_in(db, ann, "Ann Lee", email="ann@example.com")
    await signed_in(db, bob, "Bob Lee", dt.date(1984, 6, 1), email="bob@example.com")
    ann_id, bob_id = await _patient_id(db, 700), await _patient_id(db, 701)
    sent = await access.request_by_email(db, bob_id, "ann@example.com", REQ, 14)
    assert sent.grant
    await access.decide(db, sent.grant.id, ann_id, approve=True)
    # Its notice goes from the outbox when the sender gets to it: waited for here, or it
    # could come in the middle of a test and be taken for a reply.
    await bob.wait_for("approved your request")
    async with db.transaction() as conn:
        await portal.add_record(conn, ann_id, dt.date(2026, 1, 5), "result", "HbA1c", "5.4 %")
        await portal.add_appointment(conn, ann_id, now() + 86400, now() + 90000, "Dr Rao", "Room 1")
    return ann, bob, ann_id, bob_id, sent.grant.id


async def test_revoke_while_the_accessor_is_looking(server: BotAPIServer, bot_db: Database) -> None:
    ann, bob, ann_id, _, grant_id = await _couple(bot_db, server)
    await bob.send("/switch")
    await bob.tap("Ann Lee (Partner) · Clinical")
    page = (await bob.send("/records"))[-1]
    assert "HbA1c" in page.text
    await ann.send("/access")
    assert "People who access you" in ann.last.text and "Bob Lee · Clinical, Edit" in ann.last.text
    await ann.tap("Bob Lee (accesses you) ›")
    assert "Bob Lee accesses your portal" in ann.last.text
    await ann.tap("Revoke access")
    assert "Revoke Bob Lee's access to your portal (Clinical, Edit)?" in ann.last.text
    await ann.tap("Yes", expect=2)
    await server.wait_idle()
    assert "Bob Lee" not in ann.last.text.split("People who access you")[1].split("\n")[1]
    assert "Your access to Ann Lee's portal was revoked." in bob.last.text
    await bob.tap_data(TurnPage(Area.RECORDS, ann_id, 0).encode(), message=page)
    assert bob.alerts[-1] == ("You no longer have access to this portal.", True)
    await bob.send("/records", expect=2)
    assert "Your access to Ann Lee's portal has ended" in bob.bot_messages[-2].text
    assert bob.last.text.startswith("👤 Viewing: your own portal") and "HbA1c" not in bob.last.text
    async with bot_db.read() as conn:
        assert (await grants.get(conn, grant_id)).status == "revoked"  # type: ignore[union-attr]


async def test_clinical_to_administrative_hides_records_at_once(
    server: BotAPIServer, bot_db: Database
) -> None:
    ann, bob, ann_id, _, _ = await _couple(bot_db, server)
    await bob.send("/switch")
    await bob.tap("Ann Lee (Partner) · Clinical")
    page = (await bob.send("/records"))[-1]
    await ann.send("/access")
    await ann.tap("Bob Lee (accesses you) ›")
    await ann.tap("Make it Administrative", expect=2)
    await server.wait_idle()
    assert "Your access to Ann Lee's portal changed: Administrative, Edit." in bob.last.text
    await bob.tap_data(TurnPage(Area.RECORDS, ann_id, 0).encode(), message=page)
    assert bob.alerts[-1][1] is True and "not shared" in (bob.alerts[-1][0] or "")
    await bob.send("/records")
    assert "not shared with you" in bob.last.text
    await bob.send("/appointments")
    assert "Dr Rao" in bob.last.text  # appointments still allowed
    await ann.send("/access")
    await ann.tap("Bob Lee (accesses you) ›")
    await ann.tap("Make it View", expect=2)
    await bob.send("/appointments")
    assert not [label for label in bob.last.labels if label.startswith("Cancel")]


async def test_leave(server: BotAPIServer, bot_db: Database) -> None:
    ann, bob, _, _, grant_id = await _couple(bot_db, server)
    await bob.send("/access")
    assert "Ann Lee (Partner) · Clinical, Edit" in bob.last.text
    await bob.tap("Ann Lee ›")
    await bob.tap("Stop accessing")
    await bob.tap("Yes", expect=2)
    await server.wait_idle()
    assert "Bob Lee no longer accesses the portal of Ann Lee." in ann.last.text
    await bob.tap_data(StopAccessing(grant_id).encode(), message=bob.last)  # a second tap
    assert bob.alerts[-1][1] is True
    async with bot_db.read() as conn:
        assert len(await audit.by_action(conn, "grant.left")) == 1


async def test_withdraw_a_pending_request_and_approve_one_from_access(
    server: BotAPIServer, bot_db: Database
) -> None:
    ann, bob = server.user(700, "Ann"), server.user(701, "Bob")
    await signed_in(bot_db, ann, "Ann Lee", email="ann@example.com")
    await signed_in(bot_db, bob, "Bob Lee", dt.date(1984, 6, 1), email="bob@example.com")
    ann_id, bob_id = await _patient_id(bot_db, 700), await _patient_id(bot_db, 701)
    to_ann = await access.request_by_email(bot_db, bob_id, "ann@example.com", REQ, 14)
    zed = AccessRequest("Zed", Relationship.PARENT, None, Level.ADMINISTRATIVE, Role.VIEW)
    to_nobody = await access.request_by_email(bot_db, bob_id, "zed@example.com", zed, 14)
    assert to_ann.grant and to_nobody.grant
    await bob.send("/access")
    assert "Your request for x is waiting" in bob.last.text
    assert "Your request for Zed is waiting: Administrative, View" in bob.last.text
    await bob.tap("Withdraw request for Zed")
    assert bob.alerts[-1] == ("Done.", False)
    assert len([label for label in bob.last.labels if label.startswith("Withdraw")]) == 1
    await ann.send("/access")
    assert (
        "x asks for access" not in ann.last.text
        and "Bob Lee asks for access: Clinical, Edit" in ann.last.text
    )
    await ann.tap("✅ Approve Bob Lee")
    await server.wait_idle()
    assert "Bob Lee approved" not in ann.last.text
    assert "Ann Lee approved your request: Clinical, Edit." in bob.last.text
    async with bot_db.read() as conn:
        assert (await grants.get(conn, to_ann.grant.id)).status == "active"  # type: ignore[union-attr]
        assert (await grants.get(conn, to_nobody.grant.id)).status == "revoked"  # type: ignore[union-attr]
    assert ann_id


async def test_a_dependent_gets_their_own_login_and_takes_over(
    server: BotAPIServer, bot_db: Database
) -> None:
    mum = server.user(700, "Ann")
    await signed_in(bot_db, mum, "Ann Lee")
    mum_id = await _patient_id(bot_db, 700)
    teen, _ = await access.create_dependent(
        bot_db,
        mum_id,
        "Mia Lee",
        dt.date(2008, 5, 1),
        AccessRequest("Mia Lee", Relationship.DAUGHTER, None, Level.CLINICAL, Role.EDIT),
    )
    await mum.send("/access")
    assert "Accounts you hold" in mum.last.text
    await mum.tap("Mia Lee's account ›")
    # The answer, the link, then its QR code (which takes a moment to draw): three events.
    await mum.tap("Give Mia Lee their own login", expect=3)
    link_msg = mum.bot_messages[-2]
    assert "Mia Lee's own login link" in link_msg.text and mum.last.kind == "photo"
    link = next(w for w in link_msg.text.split() if w.startswith("https://t.me/"))
    mia = server.user(710, "Mia")
    await mia.open_link(link)
    await mia.send("1/5/2008")
    assert "Welcome, Mia!" in mia.last.text
    # Mum keeps exactly her access; Mia now decides, and removes it.
    await mum.send("/access")
    assert (
        "Mia Lee (Daughter) · Clinical, Edit" in mum.last.text
        and "Accounts you hold" not in mum.last.text
    )
    await mia.send("/access")
    assert "Ann Lee · Clinical, Edit" in mia.last.text
    await mia.tap("Ann Lee (accesses you) ›")
    await mia.tap("Revoke access")
    await mia.tap("Yes", expect=2)
    await server.wait_idle()
    assert "Your access to Mia Lee's portal was revoked." in mum.last.text
    async with bot_db.read() as conn:
        assert not await access.may_decide(conn, mum_id, teen.id)
    # The old holder's forged taps are refused.
    await mum.tap_data(GiveOwnLogin(teen.id).encode(), message=mum.last)
    assert mum.alerts[-1][1] is True


async def test_share_a_dependent_with_a_second_parent(
    server: BotAPIServer, bot_db: Database, pinned_clock: FixedClock
) -> None:
    mum, dad = server.user(700, "Ann"), server.user(701, "Bob")
    await signed_in(bot_db, mum, "Ann Lee")
    await signed_in(bot_db, dad, "Bob Lee", dt.date(1984, 6, 1), email="bob@example.com")
    mum_id = await _patient_id(bot_db, 700)
    await access.create_dependent(
        bot_db,
        mum_id,
        "Mia Lee",
        dt.date(2016, 5, 1),
        AccessRequest("Mia Lee", Relationship.DAUGHTER, None, Level.CLINICAL, Role.EDIT),
    )
    await mum.send("/access")
    # Mum's own access to Mia is under "Patients you access", not repeated as someone else's.
    assert "Mia Lee (Daughter) · Clinical, Edit" in mum.last.text
    assert "People who access Mia Lee" not in mum.last.text
    assert "Ann Lee (accesses Mia Lee) ›" not in mum.last.labels
    await mum.tap("Mia Lee's account ›")
    await mum.tap("Share Mia Lee with someone")
    await mum.send("bob@example.com")
    await mum.tap("Clinical")
    await mum.tap("View")
    assert "Offer access to Mia Lee (Clinical, View)" in mum.last.text
    await mum.tap("✅ Confirm")
    reply = mum.last.text
    await server.wait_idle()
    assert "If this email belongs to a portal account" in reply
    card = dad.last
    assert "Ann Lee offers you access to the portal of Mia Lee." in card.text
    assert card.labels == ["✅ Accept", "❌ Decline"]
    await dad.tap("✅ Accept", message=card)
    await server.wait_idle()
    assert "Bob Lee accepted access to the portal of Mia Lee: Clinical, View." in mum.last.text
    await dad.send("/switch")
    assert "Mia Lee (Daughter) · Clinical" in dad.last.labels
    await mum.send("/access")
    assert "People who access Mia Lee\n• Bob Lee · Clinical, View\n" in mum.last.text
    assert "Bob Lee (accesses Mia Lee) ›" in mum.last.labels
    assert "Ann Lee (accesses Mia Lee) ›" not in mum.last.labels
    # Sharing with an email nobody has reads the same and sends nothing.
    await mum.send("/access")
    await mum.tap("Mia Lee's account ›")
    await mum.tap("Share Mia Lee with someone")
    await mum.send("nobody@example.com")
    await mum.tap("Administrative")
    await mum.tap("View")
    await mum.tap("✅ Confirm")
    assert mum.last.text == reply


async def test_activity_in_order_and_only_for_the_subject(
    server: BotAPIServer, bot_db: Database
) -> None:
    ann, bob, ann_id, _, _ = await _couple(bot_db, server)
    await bob.send("/switch")
    await bob.tap("Ann Lee (Partner) · Clinical")
    await bob.send("/records")
    await bob.send("/invoices")
    await ann.send("/activity")
    log = ann.last.text
    assert log.startswith("👤 Viewing: your own portal\n\n📜 Your access log\n")
    lines = [line for line in log.splitlines() if line.startswith("•")]
    assert "Bob Lee viewed invoices" in lines[0] and "Bob Lee viewed clinical records" in lines[1]
    assert any("Ann Lee approved Bob Lee's access (Clinical, Edit)" in line for line in lines)
    assert any("Bob Lee asked for access (Clinical, Edit)" in line for line in lines)
    assert "The practice sent an invite link to this portal" in lines[-1]  # the first event
    assert "HbA1c" not in log and "5.4" not in log
    await bob.tap_data(TurnLogPage(ann_id, 0).encode(), message=bob.last)
    assert bob.alerts[-1] == (
        "Only the patient, or the holder of their account, can read this log.",
        True,
    )


async def test_forged_access_buttons_are_refused(server: BotAPIServer, bot_db: Database) -> None:
    ann, bob, _, _, grant_id = await _couple(bot_db, server)
    eve = server.user(666, "Eve")
    await signed_in(bot_db, eve, "Eve Vil", dt.date(1970, 1, 1))
    await eve.send("/access")
    for data in (
        RevokeAccess(grant_id).encode(),
        ChangeLevel(grant_id, Level.ADMINISTRATIVE).encode(),
        StopAccessing(grant_id).encode(),
        WithdrawRequest(grant_id).encode(),
        ChangeRole(grant_id, Role.VIEW).encode(),
        GiveOwnLogin(1).encode(),
        "ac:zz:1",
        OpenGrant(grant_id).encode(),
    ):
        await eve.tap_data(data, message=eve.last)
        assert eve.alerts[-1][1] is True, data
    # The accessor may not revoke...
    await bob.tap_data(RevokeAccess(grant_id).encode(), message=bob.last)
    assert bob.alerts[-1][1] is True
    # ...nor raise his own access.
    await bob.tap_data(ChangeLevel(grant_id, Level.CLINICAL).encode(), message=bob.last)
    assert bob.alerts[-1][1] is True
    async with bot_db.read() as conn:
        grant = await grants.get(conn, grant_id)
    assert grant is not None and (grant.status, grant.level, grant.role) == (
        "active",
        "clinical",
        "edit",
    )
    assert ann


async def _card(db: Database, ann: SimUser, bob_id: int) -> tuple[int, Msg]:
    """Bob asks Ann for access; the card with Approve and Deny reaches her (the outbox)."""
    newest = max((m.message_id for m in ann.bot_messages), default=0)
    sent = await access.request_by_email(db, bob_id, "ann@example.com", REQ, 14)
    assert sent.grant is not None
    card = await ann.wait_for("asks to access your patient portal", after=newest)
    return sent.grant.id, card


async def test_the_card_says_how_the_request_ended(server: BotAPIServer, bot_db: Database) -> None:
    ann, bob = server.user(700, "Ann"), server.user(701, "Bob")
    await signed_in(bot_db, ann, "Ann Lee", email="ann@example.com")
    await signed_in(bot_db, bob, "Bob Lee", dt.date(1984, 6, 1), email="bob@example.com")
    ann_id, bob_id = await _patient_id(bot_db, 700), await _patient_id(bot_db, 701)

    # Bob's Withdraw wins the race with Ann's Approve on the card she already has.
    grant_id, card = await _card(bot_db, ann, bob_id)
    await bob.send("/access")
    await bob.tap("Withdraw request for x")
    # The withdrawal reached Ann's card (the outbox edits it); her tap was already on its way.
    await ann.tap_data(ApproveRequest(grant_id).encode(), message=card)
    assert ann.alerts[-1] == ("This request was withdrawn.", True)
    assert card.text.endswith("🚫 This request was withdrawn.") and not card.buttons
    async with bot_db.read() as conn:
        grant = await grants.get(conn, grant_id)
        approved = [e for e in await audit.by_action(conn, "grant.approved") if e.ref_id]
    assert grant_id not in [e.ref_id for e in approved]
    assert grant is not None and (grant.status, grant.end_reason) == ("revoked", "withdrawn")

    async def ended_by(end: Callable[[int], Awaitable[object]]) -> Msg:
        """A fresh card; Ann approves it, it ends another way, then a late Approve."""
        grant_id, card = await _card(bot_db, ann, bob_id)
        await ann.tap("✅ Approve", message=card)
        await end(grant_id)
        await ann.tap_data(ApproveRequest(grant_id).encode(), message=card)
        return card

    card = await ended_by(lambda g: access.leave(bot_db, bob_id, g))
    assert ann.alerts[-1] == ("This access was approved and later given up.", True)
    assert card.text.endswith("🚫 This access was approved and later given up.")
    card = await ended_by(lambda g: access.revoke(bot_db, ann_id, g))
    assert ann.alerts[-1] == ("This access was approved and later revoked.", True)
    assert card.text.endswith("🚫 This access was approved and later revoked.")

    grant_id, card = await _card(bot_db, ann, bob_id)
    await ann.tap("❌ Deny", message=card)
    await ann.tap_data(ApproveRequest(grant_id).encode(), message=card)
    assert ann.alerts[-1] == ("Declined.", True) and card.text.endswith("❌ Declined.")

    grant_id, card = await _card(bot_db, ann, bob_id)
    async with bot_db.transaction() as conn:
        await conn.execute("UPDATE grants SET expires_at = ? WHERE id = ?", (now() - 1, grant_id))
    await ann.tap("✅ Approve", message=card)
    assert ann.alerts[-1] == ("This request has expired.", True)
    assert card.text.endswith("⌛ This request has expired.")
