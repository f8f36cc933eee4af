"""The bot speaks about patients only in a private chat with that patient (issue #17, item 1).

In a group the bot shows nothing, starts nothing and signs nobody in: a command gets one
"Please message me directly", a button only an alert, chatter nothing; an invite link seen
there is burned; a group or channel the bot is added to is left. Each test drives the
real bot through the emulator's groups; the snapshots show that nothing else happened.
"""

from __future__ import annotations

import datetime as dt
import re
import time
from dataclasses import dataclass
from typing import Any

import pytest
from telegram import Update
from telegram.error import Forbidden
from telegram.ext import Application, BaseHandler, CallbackQueryHandler, CommandHandler

from bot import access, callbacks
from bot.access import AccessRequest, Area
from bot.callbacks import (
    AddingAnswer,
    AddPatient,
    AnswerOwnLogin,
    ApproveAs,
    ApproveRequest,
    ApproveWithChanges,
    AskForLevel,
    AskForRole,
    AskToCancel,
    AskToLeave,
    AskToRevoke,
    BackToAccess,
    BackToRequest,
    CancelAppointment,
    CancelFlow,
    ChangeAnswer,
    ChangeAnswers,
    ChangeLevel,
    ChangeRole,
    ChooseRelationship,
    ConfirmAdding,
    ConfirmAppointment,
    ConfirmSharing,
    DenyRequest,
    FlowName,
    GiveOwnLogin,
    GoBack,
    KeepAppointment,
    KeepLinked,
    OfferLevel,
    OfferRole,
    OpenAccess,
    OpenActivity,
    OpenArea,
    OpenDependent,
    OpenGrant,
    OpenSwitch,
    RevokeAccess,
    ShareDependent,
    SignOut,
    SkipEmail,
    StaySignedIn,
    StopAccessing,
    SwitchTo,
    TurnFoundPage,
    TurnHomePage,
    TurnLogPage,
    TurnPage,
    TurnSwitchPage,
    UnlinkAccount,
    WithdrawRequest,
)
from bot.dispatch import Table
from bot.i18n import translator
from conversations import Conversation
from handlers import language
from storage import Database, audit, invites, logins, portal
from storage.db import now
from storage.notifications import Item, Topic
from storage.vocabulary import Level, Relationship, Role
from tests.botapi import BotAPIServer, Msg, SimGroup, SimUser
from tests.helpers import BOT, make_invite, make_practitioner, outbox_settled, signed_in

App = Application  # type: ignore[type-arg]
PLEASE = "Please message me directly: I only talk about patients in a private chat."
OPEN = "Open a private chat"
GOODBYE = (
    "I only work in private chats, so that patients' information stays private. "
    "Please message me directly. I'm leaving this group now."
)
DIRECT = f"https://t.me/{BOT}"
HOUR = 3600


@dataclass
class World:
    ann: SimUser  # signed in, holds Mia, asked Bob for access
    bob: SimUser  # signed in, decides Ann's pending request
    ann_id: int
    mia_id: int
    mia_grant: int
    pending: int
    appointment: int
    group: SimGroup
    secrets: list[str]  # what must never appear in a group


async def _patient_id(db: Database, telegram_id: int) -> int:
    async with db.read() as conn:
        login = await logins.get(conn, telegram_id)
    assert login is not None
    return login.patient_id


async def _world(server: BotAPIServer, db: Database) -> World:
    ann, bob = server.user(700, "Ann"), server.user(701, "Bob")
    await make_practitioner(db, 700)  # Ann is staff too: /invite is hers as well
    await signed_in(db, ann, "Ann Lee", dt.date(1985, 2, 3), "ann.lee@example.com")
    await signed_in(db, bob, "Bob Stone", dt.date(1979, 11, 23), "bob.stone@example.com")
    ann_id = await _patient_id(db, 700)
    mia, grant = await access.create_dependent(
        db,
        ann_id,
        "Mia Lee",
        dt.date(2016, 5, 1),
        AccessRequest("Mia Lee", Relationship.DAUGHTER, None, Level.CLINICAL, Role.EDIT),
    )
    asked = await access.request_by_email(
        db,
        ann_id,
        "bob.stone@example.com",
        AccessRequest("Bob Stone", Relationship.PARTNER, None, Level.CLINICAL, Role.EDIT),
        ttl_days=14,
    )
    assert asked.grant is not None and asked.grant.status == "pending"
    # The outbox brings Bob his card: before the tests look, so that nothing moves after.
    await bob.wait_for("Ann Lee asks to access your patient portal")
    await outbox_settled(db)
    start = now() + 24 * HOUR
    async with db.transaction() as conn:
        for patient in (ann_id, mia.id):
            await portal.add_appointment(conn, patient, start, start + HOUR, "Dr Ivy", "Room 4")
            await portal.add_invoice(
                conn, patient, "INV-31", dt.date(2026, 1, 9), 4200, "AUD", False
            )
            await portal.add_record(
                conn, patient, dt.date(2026, 3, 1), "condition", "Hay fever", "Seasonal"
            )
        appointment = await portal.add_appointment(
            conn, mia.id, start + 2 * 24 * HOUR, start + 50 * HOUR, "Dr Ivy", "Room 4"
        )
    # The bot is in the group already: added before it left groups by itself, or while it
    # did not ask for my_chat_member. The gate has to hold on its own.
    group = server.group(-4242, "Lee family")
    group.bot_status = "member"
    secrets = ["Ann Lee", "Lee", "Mia", "Bob Stone", "Stone", "ann.lee@", "bob.stone@"]
    secrets += ["1985", "1979", "2016", "3 Feb", "Hay fever", "INV-31", "Dr Ivy", "Room 4"]
    return World(ann, bob, ann_id, mia.id, grant.id, asked.grant.id, appointment.id, group, secrets)


def _walk(handler: BaseHandler[Any, Any, Any]) -> list[BaseHandler[Any, Any, Any]]:
    if isinstance(handler, Conversation):
        inner = [*handler.entry_points, *handler.fallbacks]
        inner += [h for handlers in handler.states.values() for h in handlers]
        return [h for i in inner for h in _walk(i)]
    if isinstance(handler, Table):
        return list(handler.entries)
    return [handler]


def _registered(app: App) -> list[BaseHandler[Any, Any, Any]]:
    return [h for group in app.handlers.values() for top in group for h in _walk(top)]


def registered_commands(app: App) -> set[str]:
    """Every command any handler answers, conversations' states and fallbacks included."""
    return {c for h in _registered(app) if isinstance(h, CommandHandler) for c in h.commands}


def registered_patterns(app: App) -> list[re.Pattern[str]]:
    """The callback-data pattern of every button handler (the catch-all has none)."""
    return [
        h.pattern
        for h in _registered(app)
        if isinstance(h, CallbackQueryHandler) and isinstance(h.pattern, re.Pattern)
    ]


async def _snapshot(db: Database) -> dict[str, list[str]]:
    """Every row of every table: nothing may change because of a group."""
    async with db.read() as conn:
        cur = await conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        tables = [row[0] for row in await cur.fetchall()]
        found = {}
        for table in tables:
            cur = await conn.execute(f"SELECT * FROM {table}")
            found[table] = sorted(repr(tuple(row)) for row in await cur.fetchall())
    return found


def _chat(chat: SimUser | SimGroup) -> list[tuple[int, str, list[str], int]]:
    return [(m.message_id, m.content, m.labels, m.edited) for m in chat.messages]


def _is_please(m: Msg, text: str = PLEASE, label: str = OPEN) -> bool:
    buttons = [(b.text, b.url) for row in m.buttons for b in row]
    return (m.text, buttons) == (text, [(label, DIRECT)])


def _assert_no_patient_data(w: World) -> None:
    said = [m.content for m in w.group.bot_messages]
    said += [text or "" for user in (w.ann, w.bob) for text, _alert in user.alerts]
    for secret in w.secrets:
        assert not [s for s in said if secret in s], (secret, w.group.transcript())


async def test_every_command_in_a_group_gets_only_please_message_me_directly(
    server: BotAPIServer, app: App, bot_db: Database
) -> None:
    w = await _world(server, bot_db)
    commands = registered_commands(app)
    menus = translator(None)
    assert {c.command for c in language.commands(menus, practitioner=True)} <= commands
    assert {"start", "help", "cancel", "invite", "addpatient", "details"} <= commands
    for command in sorted(commands):
        for text in (f"/{command}", f"/{command}@{BOT}"):
            db_before, ann_before, bob_before = await _snapshot(bot_db), _chat(w.ann), _chat(w.bob)
            said_before = len(w.group.bot_messages)
            replies = await w.group.send(w.ann, text)
            await server.wait_idle()
            assert len(w.group.bot_messages) == said_before + 1, w.group.transcript()
            assert [_is_please(m) for m in replies] == [True], (text, w.group.transcript())
            assert await _snapshot(bot_db) == db_before, text
            assert (_chat(w.ann), _chat(w.bob)) == (ann_before, bob_before), text
    _assert_no_patient_data(w)
    assert server.errors == []
    # The button opens the private chat, where the same patient is served as always.
    await w.group.tap(w.ann, OPEN)
    assert "You're signed in as <b>Ann Lee</b>" in (w.ann.last.html or "")


async def test_a_group_chatter_and_other_bots_commands_get_nothing(
    server: BotAPIServer, app: App, bot_db: Database
) -> None:
    w = await _world(server, bot_db)
    for text in ("Has anyone seen my records?", "/details@other_bot", "/start@other_bot x"):
        assert await w.group.send(w.ann, text, expect=0) == []
    await server.wait_idle()
    assert w.group.bot_messages == [] and server.errors == []


async def test_group_messages_neither_enter_nor_advance_a_conversation(
    server: BotAPIServer, app: App, bot_db: Database
) -> None:
    w = await _world(server, bot_db)
    await w.ann.send("/addpatient")
    assert "full name" in w.ann.last.text
    assert await w.group.send(w.ann, "Zed Lee", expect=0) == []
    [reply] = await w.group.send(w.ann, "/cancel")
    assert _is_please(reply)
    await w.ann.send("Kit Lee")  # the private flow is still at its first step
    assert "What is Kit Lee to you?" in w.ann.last.text


async def test_every_button_pressed_in_a_group_gets_only_an_alert(
    server: BotAPIServer, app: App, bot_db: Database
) -> None:
    w = await _world(server, bot_db)
    [card] = await w.group.send(w.ann, "/start")  # a bot message in the group to press on
    mia, g, apt = w.mia_id, w.mia_grant, w.appointment
    pressed = {
        w.ann: [
            *(OpenArea(area).encode() for area in Area),
            OpenSwitch().encode(),
            AddPatient().encode(),
            OpenAccess().encode(),
            OpenActivity().encode(),
            SwitchTo(mia).encode(),
            SwitchTo(w.ann_id).encode(),
            TurnPage(Area.APPOINTMENTS, mia, 0).encode(),
            TurnPage(Area.APPOINTMENTS, mia, 0, past=True).encode(),
            TurnPage(Area.RECORDS, mia, 0).encode(),
            TurnPage(Area.INVOICES, mia, 1).encode(),
            TurnPage(Area.DETAILS, mia, 0).encode(),
            AskToCancel(mia, apt, 0).encode(),
            CancelAppointment(mia, apt, 0).encode(),
            ConfirmAppointment(mia, apt, 0).encode(),
            KeepAppointment(mia, apt, 0).encode(),
            TurnLogPage(w.ann_id, 0).encode(),
            TurnLogPage(mia, 0).encode(),
            BackToAccess().encode(),
            OpenGrant(g).encode(),
            OpenDependent(mia).encode(),
            GiveOwnLogin(mia).encode(),
            AskToRevoke(g).encode(),
            RevokeAccess(g).encode(),
            AskToLeave(g).encode(),
            StopAccessing(g).encode(),
            WithdrawRequest(g).encode(),
            ChangeLevel(g, Level.ADMINISTRATIVE).encode(),
            ChangeRole(g, Role.VIEW).encode(),
            ShareDependent(mia).encode(),
            OfferLevel(Level.CLINICAL).encode(),
            OfferRole(Role.VIEW).encode(),
            ConfirmSharing().encode(),
            "lang:vi",
            ChooseRelationship(Relationship.DAUGHTER).encode(),
            AskForLevel(Level.CLINICAL).encode(),
            AskForRole(Role.EDIT).encode(),
            AnswerOwnLogin(False).encode(),
            ChangeAnswer(AddingAnswer.NAME).encode(),
            ConfirmAdding().encode(),
            ChangeAnswers().encode(),
            SkipEmail().encode(),
            *(GoBack(flow).encode() for flow in FlowName),
            *(CancelFlow(flow).encode() for flow in FlowName),
            TurnSwitchPage(1).encode(),
            TurnFoundPage.of(1, "Mia").encode(),
            TurnHomePage(1).encode(),
            SignOut(w.ann_id, 0).encode(),
            StaySignedIn().encode(),
            UnlinkAccount(w.ann_id, 700).encode(),
            KeepLinked().encode(),
            # Reminders, new-item notices, /notifications
            callbacks.ConfirmFromReminder(apt).encode(),
            callbacks.CancelFromReminder(apt).encode(),
            callbacks.ConfirmCancelFromReminder(apt).encode(),
            callbacks.KeepFromReminder(apt).encode(),
            callbacks.OpenNewItem(mia, Item.INVOICE).encode(),
            callbacks.ShowNotifications(0).encode(),
            callbacks.ChooseNotificationsFor(mia).encode(),
            callbacks.ToggleTopic(mia, Topic.REMINDERS).encode(),
            callbacks.ToggleQuietHours().encode(),
            callbacks.ShiftQuietHours(True).encode(),
            # The practice's policy: its notices and cards, stopping all access
            callbacks.ContinueAccess(g).encode(),
            callbacks.EndAccessAsYoung(g).encode(),
            callbacks.ApproveClinical(g).encode(),
            callbacks.KeepAdministrative(g).encode(),
            callbacks.KeepAfterAdulthood(g).encode(),
            callbacks.RenewAccess(g).encode(),
            callbacks.AskPatientToRenew(g).encode(),
            callbacks.RenewForPatient(g).encode(),
            callbacks.EndForPatient(g).encode(),
            callbacks.AskToStopAll(w.ann_id).encode(),
            callbacks.StopAllAccess(w.ann_id).encode(),
            # A practitioner's /access (Ann is staff too)
            callbacks.OpenPatientAccess(mia).encode(),
            callbacks.AskToSuspend(mia, g).encode(),
            callbacks.SuspendAccess(mia, g).encode(),
            "no-such-button",
        ],
        # The real decider of Ann's pending request, forging its buttons in the group.
        w.bob: [
            ApproveRequest(w.pending).encode(),
            ApproveAs(w.pending, Level.CLINICAL, Role.VIEW).encode(),
            ApproveWithChanges(w.pending).encode(),
            DenyRequest(w.pending).encode(),
            BackToRequest(w.pending).encode(),
        ],
    }
    every = [data for datas in pressed.values() for data in datas]
    unpressed = [p.pattern for p in registered_patterns(app) if not any(map(p.match, every))]
    assert unpressed == [], "a new kind of button: press it here too"
    for user, datas in pressed.items():
        for data in datas:
            db_before, ann_before, bob_before = await _snapshot(bot_db), _chat(w.ann), _chat(w.bob)
            group_before = _chat(w.group)
            assert await w.group.tap_data(user, data, message=card) == []
            await server.wait_idle()
            assert user.alerts[-1] == (PLEASE, True), data
            assert _chat(w.group) == group_before, (data, w.group.transcript())
            assert await _snapshot(bot_db) == db_before, data
            assert (_chat(w.ann), _chat(w.bob)) == (ann_before, bob_before), data
    async with bot_db.read() as conn:
        cur = await conn.execute("SELECT status FROM grants WHERE id = ?", (w.pending,))
        assert (await cur.fetchone())[0] == "pending"
    _assert_no_patient_data(w)
    assert server.errors == []


@pytest.mark.parametrize(
    ("form", "replies"),
    [
        ("/start {token}", 1),
        (f"/start@{BOT} {{token}}", 1),
        (f"Here is my link: https://t.me/{BOT}?start={{token}} ", 0),  # chatter: no reply
    ],
)
async def test_an_invite_link_seen_in_a_group_is_burned_and_its_practitioner_told_once(
    server: BotAPIServer, app: App, bot_db: Database, form: str, replies: int
) -> None:
    rao, zoe = server.user(900, "Rao"), server.user(702, "Zoe")
    await make_practitioner(bot_db, 900)
    await rao.send("/start")
    told_before = len(rao.bot_messages)
    link = await make_invite(
        bot_db, "Zoe Park", dt.date(1990, 7, 14), "zoe.park@example.com", invited_by=900
    )
    text = form.format(token=link.split("start=")[1])
    group = server.group(-1001111222333, "Park family", "supergroup")
    group.bot_status = "member"

    said = await group.send(zoe, text, expect=replies)
    await server.wait_idle()
    assert [_is_please(m) for m in said] == [True] * replies, group.transcript()
    assert len(group.bot_messages) == replies
    async with bot_db.read() as conn:
        assert await logins.get(conn, 702) is None
        invite_row = await invites.get(conn, 1)
        burned = await audit.by_action(conn, "invite.burned_in_group")
    assert invite_row is not None and invite_row.burned_at is not None
    assert [(e.ref_id, e.subject_patient_id, e.actor_telegram_id, e.detail) for e in burned] == [
        (invite_row.id, invite_row.patient_id, 702, "supergroup")
    ]
    [notice] = rao.bot_messages[told_before:]
    assert "Zoe Park" in notice.text and "group chat" in notice.text and "/invite" in notice.text

    await group.send(zoe, text, expect=replies)  # seen again: burned already, nobody told
    await server.wait_idle()
    assert len(rao.bot_messages) == told_before + 1
    async with bot_db.read() as conn:
        assert len(await audit.by_action(conn, "invite.burned_in_group")) == 1

    [refusal] = await zoe.open_link(link)
    assert refusal.text.startswith("This invite link is no longer valid"), zoe.transcript()
    assert "ask your practice for a new invite link" in refusal.text
    async with bot_db.read() as conn:
        assert await logins.get(conn, 702) is None
    for secret in ("Zoe Park", "Park", "1990", "zoe.park@"):
        assert not [m for m in group.bot_messages if secret in m.content], group.transcript()
    assert server.errors == []


async def test_an_invite_burned_while_its_patient_types_the_date_of_birth(
    server: BotAPIServer, app: App, bot_db: Database
) -> None:
    zoe, eve = server.user(702, "Zoe"), server.user(666, "Eve")
    link = await make_invite(bot_db, "Zoe Park", dt.date(1990, 7, 14))
    await zoe.open_link(link)
    assert "date of birth" in zoe.last.text
    group = server.group(-4343, "Gossip")
    group.bot_status = "member"
    [reply] = await group.send(eve, "/start " + link.split("start=")[1])
    assert _is_please(reply)
    await zoe.send("14/7/1990")
    assert zoe.last.text.startswith("This invite link is no longer valid"), zoe.transcript()
    async with bot_db.read() as conn:
        assert await logins.get(conn, 702) is None and await logins.get(conn, 666) is None


@pytest.mark.parametrize(
    ("kind", "chat_id", "admin"),
    [("group", -4444, False), ("supergroup", -1009876543210, True)],
)
async def test_added_to_a_group_the_bot_says_so_once_and_leaves(
    server: BotAPIServer, app: App, bot_db: Database, kind: str, chat_id: int, admin: bool
) -> None:
    ann = server.user(700, "Ann")
    await signed_in(bot_db, ann, "Ann Lee")
    group = server.group(chat_id, "Lee family", kind)
    await group.add_bot(ann, admin=admin, expect=2)  # a message, and leaving
    await server.wait_idle()  # Telegram's my_chat_member about the bot leaving, too
    [goodbye] = group.bot_messages
    assert _is_please(goodbye, GOODBYE), group.transcript()
    assert [p["chat_id"] for name, p in server.calls if name == "leaveChat"] == [chat_id]
    assert group.bot_status == "left" and server.errors == []
    with pytest.raises(Forbidden, match=f"bot is not a member of the {kind} chat"):
        await app.bot.send_message(chat_id, "still here?")


async def test_added_to_a_channel_the_bot_leaves_without_a_word(
    server: BotAPIServer, app: App, bot_db: Database
) -> None:
    ann = server.user(700, "Ann")
    channel = server.group(-1005555666777, "Practice news", "channel")
    await channel.add_bot(ann, admin=True, expect=1)  # leaving
    await server.wait_idle()
    assert channel.bot_messages == [] and channel.bot_status == "left"
    assert [p["chat_id"] for name, p in server.calls if name == "leaveChat"] == [channel.id]


async def test_a_channel_post_gets_nothing(
    server: BotAPIServer, app: App, bot_db: Database
) -> None:
    channel = server.group(-1005555666777, "Practice news", "channel")
    # In the channel from before: Telegram does not even send its posts (they are not in
    # the bot's allowed_updates), and one that came anyway (as a webhook would hand it
    # over) stops at the gate.
    channel.bot_status = "administrator"
    assert await channel.post("/details", expect=0) == []
    post = {
        "message_id": channel.messages[-1].message_id,  # the post Telegram did not send
        "sender_chat": channel.chat_json(),
        "chat": channel.chat_json(),
        "date": int(time.time()),
        "text": "/details",
        "entities": [{"type": "bot_command", "offset": 0, "length": 8}],
    }
    await app.process_update(Update.de_json({"update_id": 1, "channel_post": post}, app.bot))
    await server.wait_idle()
    assert channel.bot_messages == [] and server.errors == []


async def test_blocking_and_unblocking_in_private_changes_nothing(
    server: BotAPIServer, app: App, bot_db: Database
) -> None:
    ann = server.user(700, "Ann")
    await signed_in(bot_db, ann, "Ann Lee")
    before, calls = _chat(ann), len(server.calls)
    server.block(ann.id)
    await server.wait_idle()
    server.unblock(ann.id)
    await server.wait_idle()
    assert _chat(ann) == before and server.errors == []
    assert [name for name, _p in server.calls[calls:]] == ["getUpdates"] * (
        len(server.calls) - calls
    )
    await ann.send("/help")
    assert ann.last.text.startswith("What I can do")


async def test_the_group_is_answered_in_the_senders_language(
    server: BotAPIServer, app: App, bot_db: Database
) -> None:
    vi, zh = translator("vi"), translator("zh_Hans")
    assert vi(PLEASE) != PLEASE and zh(GOODBYE) != GOODBYE  # really translated
    group = server.group(-4545, "Lớp học")
    group.bot_status = "member"
    lan = server.user(704, "Lan", language_code="vi")
    [reply] = await group.send(lan, "/help")
    assert _is_please(reply, vi(PLEASE), vi(OPEN))
    # Ann chose Arabic in her private chat; her Telegram app is in English.
    ann = server.user(700, "Ann")
    await signed_in(bot_db, ann, "Ann Lee")
    await ann.send("/language")
    await ann.tap("العربية")
    ar = translator("ar")
    [reply] = await group.send(ann, "/records")
    assert _is_please(reply, ar(PLEASE), ar(OPEN))
    await group.tap_data(ann, OpenArea(Area.RECORDS).encode(), message=reply)
    assert ann.alerts[-1] == (ar(PLEASE), True)
    mei = server.user(705, "Mei", language_code="zh-hans")
    other = server.group(-4646, "家庭")
    await other.add_bot(mei, expect=2)
    assert _is_please(other.last, zh(GOODBYE), zh(OPEN))
