"""Nothing said is lost: what a change owes people is queued with the change and reaches
them even when Telegram fails at the worst moment. The real bot, the Bot API emulator with
faults injected into single calls, a real SQLite file."""

from __future__ import annotations

import datetime as dt

import pytest
from telegram.ext import Application

from bot import access, invitations
from bot.access import AccessRequest
from bot.context import portal
from storage import Database, logins
from storage.vocabulary import Level, Relationship, Role
from tests.botapi import BotAPIServer, Fault, SimUser
from tests.helpers import add_child_up_to_confirm, make_invite, signed_in

WENT_WRONG = "Something went wrong; nothing was changed. Please try again."
pytestmark = pytest.mark.both_backends

TOO_OLD = "Bad Request: query is too old and response timeout expired or query ID is invalid"


async def _patient_id(db: Database, telegram_id: int) -> int:
    async with db.read() as conn:
        login = await logins.get(conn, telegram_id)
    assert login is not None
    return login.patient_id


async def _bob_asks_ann(
    app: Application,  # type: ignore[type-arg]
    server: BotAPIServer,
    db: Database,
) -> tuple[SimUser, SimUser, int]:
    """Ann and Bob signed in; Bob's request to Ann queued, as /addpatient would queue it."""
    ann, bob = server.user(700, "Ann"), server.user(701, "Bob")
    await signed_in(db, ann, "Ann Lee", email="ann@example.com")
    await signed_in(db, bob, "Bob Lee", dt.date(1984, 6, 1))
    sent = await access.request_by_email(
        db,
        await _patient_id(db, 701),
        "ann@example.com",
        AccessRequest("Ann", Relationship.PARTNER, None, Level.CLINICAL, Role.VIEW),
        14,
    )
    assert sent.grant is not None
    portal(app).sender.wake()  # queued outside any update: the background sender's
    return ann, bob, sent.grant.id


@pytest.mark.parametrize(
    ("code", "description"), [(400, TOO_OLD), (502, "Bad Gateway")], ids=["too-old", "502"]
)
async def test_a_failed_answer_to_approve_still_tells_the_requester_and_clears_the_card(
    app: Application,  # type: ignore[type-arg]
    server: BotAPIServer,
    bot_db: Database,
    code: int,
    description: str,
) -> None:
    ann, bob, _grant = await _bob_asks_ann(app, server, bot_db)
    card = await ann.wait_for("Bob Lee asks to access your patient portal")
    server.faults.append(Fault("answerCallbackQuery", code, description, chat_id=None))
    await ann.tap("✅ Approve", message=card)
    assert "Approved" in card.text and card.buttons == [], ann.transcript()
    await bob.wait_for("Ann Lee approved your request")
    assert all(WENT_WRONG not in m.text for m in ann.bot_messages), ann.transcript()


async def test_a_card_whose_send_fails_is_sent_again(
    app: Application,  # type: ignore[type-arg]
    server: BotAPIServer,
    bot_db: Database,
) -> None:
    server.faults.append(Fault("sendMessage", 502, chat_id=700, text="asks to access"))
    ann, _bob, _grant = await _bob_asks_ann(app, server, bot_db)
    await ann.wait_for("Bob Lee asks to access your patient portal", timeout=10)
    cards = [m for m in ann.bot_messages if "asks to access" in m.text]
    assert len(cards) == 1 and server.faults[0].fired == 1


async def test_a_decision_edits_every_card_that_asked_for_it(
    app: Application,  # type: ignore[type-arg]
    server: BotAPIServer,
    bot_db: Database,
) -> None:
    """Decided from /access, the original card loses its buttons too."""
    ann, bob, _grant = await _bob_asks_ann(app, server, bot_db)
    card = await ann.wait_for("Bob Lee asks to access your patient portal")
    await ann.send("/access")
    await ann.tap("✅ Approve Bob Lee")
    await bob.wait_for("Ann Lee approved your request")
    assert card.buttons == [] and "Approved" in card.text, ann.transcript()


async def test_a_withdrawn_request_reads_withdrawn_on_its_card(
    app: Application,  # type: ignore[type-arg]
    server: BotAPIServer,
    bot_db: Database,
) -> None:
    ann, bob, _grant = await _bob_asks_ann(app, server, bot_db)
    card = await ann.wait_for("Bob Lee asks to access your patient portal")
    await bob.send("/access")
    await bob.tap("Withdraw")
    await server.wait_idle()
    assert card.buttons == [], ann.transcript()


async def test_a_reply_lost_after_a_saved_change_never_says_nothing_was_changed(
    app: Application,  # type: ignore[type-arg]
    server: BotAPIServer,
    bot_db: Database,
) -> None:
    """Telegram took the message but its answer was lost (a 502 from a proxy, a timeout):
    the account exists, so the user must not read that nothing was changed."""
    ann = server.user(700, "Ann")
    await signed_in(bot_db, ann, "Ann Lee")
    await add_child_up_to_confirm(ann)
    server.faults.append(Fault("sendMessage", 502, chat_id=700, deliver=True))
    server.faults.append(Fault("editMessageText", 502, chat_id=700, deliver=True))
    await ann.tap("✅ Confirm", expect=2)
    async with bot_db.read() as conn:
        cur = await conn.execute("SELECT count(*) FROM patients WHERE holder_id IS NOT NULL")
        assert (await cur.fetchone())[0] == 1
    assert all(WENT_WRONG not in m.text for m in ann.bot_messages), ann.transcript()
    assert any("Mia Lee's account is ready" in m.text for m in ann.bot_messages)
    # The tap was answered already: the word comes as a message, not a second answer.
    assert "after your change was saved" in ann.last.text, ann.transcript()


async def test_a_lost_welcome_after_signing_in_says_the_change_was_saved(
    app: Application,  # type: ignore[type-arg]
    server: BotAPIServer,
    bot_db: Database,
) -> None:
    ann = server.user(700, "Ann")
    link = await make_invite(bot_db, "Ann Lee")
    await ann.open_link(link)
    server.faults.append(Fault("sendMessage", 502, chat_id=700, text="Welcome, Ann"))
    await ann.send("3/2/1985")
    assert "after your change was saved" in ann.last.text, ann.transcript()
    assert all(WENT_WRONG not in m.text for m in ann.bot_messages), ann.transcript()
    await ann.send("/details")
    assert "Ann Lee" in ann.last.text


async def test_a_card_in_a_chat_signed_out_since_learns_nothing(
    app: Application,  # type: ignore[type-arg]
    server: BotAPIServer,
    bot_db: Database,
) -> None:
    """Ann's old phone was signed out by the practice; she decides on her new one. The card
    on the old phone keeps what it showed: whoever holds that phone learns no outcome."""
    ann, bob, _grant = await _bob_asks_ann(app, server, bot_db)
    old_card = await ann.wait_for("Bob Lee asks to access your patient portal")
    ann_id = await _patient_id(bot_db, 700)
    assert await invitations.unlink(bot_db, ann_id) is not None
    new_phone = server.user(710, "Ann")
    link = await make_invite(bot_db, "Ann Lee", email="ann@example.com")
    await new_phone.open_link(link)
    await new_phone.send("3/2/1985")
    card = await new_phone.wait_for("Bob Lee asks to access your patient portal")
    await new_phone.tap("❌ Deny", message=card)
    await bob.wait_for("was declined")
    assert "Declined" in card.text
    assert old_card.buttons and "Declined" not in old_card.text, ann.transcript()
