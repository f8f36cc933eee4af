"""/activity in words: every event the code can record, who did it, to whose access, and
whose log it is (it follows /switch)."""

from __future__ import annotations

import ast
import datetime as dt
import zoneinfo
from pathlib import Path

import pytest

from bot import access, fhir
from bot.access import AccessRequest
from bot.callbacks import ChangeLevel, OpenGrant, RevokeAccess, TurnLogPage
from bot.i18n import LANGUAGES, translator
from handlers.activity import describe
from storage import Database, audit
from storage.audit import Action, Attempt
from storage.models import AuditEvent, LogEntry
from storage.vocabulary import Level, Relationship, Role
from tests.botapi import BotAPIServer
from tests.helpers import make_invite, make_practitioner, signed_in
from tests.test_fhir import DATA
from tests.test_manage import _couple, _patient_id

ROOT = Path(__file__).resolve().parent.parent
SYDNEY = zoneinfo.ZoneInfo("Australia/Sydney")

# The details each action is recorded with (storage/audit.py's callers); None: no detail.
DETAILS: dict[Action, list[str | None]] = {
    Action.GRANT_REQUESTED: ["clinical/edit"],
    Action.GRANT_APPROVED: ["clinical/edit", "administrative/view changed", "as_holder"],
    Action.GRANT_DENIED: ["clinical/edit", "stop_all"],
    Action.GRANT_CHANGED: ["clinical/edit>administrative/view"],
    Action.GRANT_OFFERED: ["administrative/view"],
    Action.GRANT_DECIDE: [attempt.value for attempt in Attempt],
    Action.INVITE_CREATED: [None, "dob_differs"],
    Action.INVITE_BURNED_IN_GROUP: ["group", "supergroup"],
    Action.PATIENT_IMPORTED: ["created", "updated", "linked"],
    Action.FHIR_IMPORTED: ["p1 a0 i0 r0 x0"],
    Action.SWITCH_FALLBACK: ["revoked", "expired", None],
    Action.APPOINTMENT_CANCELLED: [None, "no_edit_role", "not_this_patient"],
    Action.GRANT_REVOKED: [None, "stop_all"],
    Action.POLICY_LIMITED: ["teen"],
    Action.POLICY_ENDED: ["adult", "term"],
    Action.POLICY_END_DATE: ["term"],
    Action.POLICY_OWN_LOGIN: ["own_login"],
    Action.POLICY_HOLDER_ENDED: ["adult"],
}


def _entry(action: Action, outcome: str, detail: str | None, actor: str | None) -> LogEntry:
    event = AuditEvent(
        id=1,
        at=0,
        actor_patient_id=7 if actor else None,
        actor_telegram_id=None,
        subject_patient_id=1,
        action=action.value,
        outcome=outcome,
        ref_id=3,
        detail=detail,
    )
    return LogEntry(event=event, actor_name=actor, accessor_id=8, accessor_name="Bob Lee")


def _cases() -> list[tuple[Action, str, str | None, str | None]]:
    return [
        (action, outcome, detail, actor)
        for action in Action
        for outcome in ("ok", "refused")
        for detail in DETAILS.get(action, [None])
        for actor in ("Ann Lee", None)
    ]


@pytest.mark.parametrize("language", sorted(LANGUAGES))
def test_every_action_the_code_can_record_has_words(language: str) -> None:
    """Each Action (and each refused attempt), allowed or refused, by a patient or not: a
    sentence in this language, never the code, a placeholder or an empty access."""
    _, en = translator(language), translator("en")
    unknown = _("{who} did something this version cannot show ({code})").split("{who}")[-1]
    for action, outcome, detail, actor in _cases():
        entry = _entry(action, outcome, detail, actor)
        text = describe(_, entry, "Ann Lee", own=True)
        case = f"{action.value} {outcome} {detail} by {actor}: {text!r}"
        code = action.value
        assert not text.endswith(code) and ("." not in code or code not in text), case
        assert "{" not in text and "()" not in text, case
        assert unknown.split("{code}")[0] not in text, case
        if language != "en":
            assert text != describe(en, entry, "Ann Lee", own=True), f"untranslated: {case}"


def test_the_words_test_enumerates_what_the_code_records() -> None:
    """Every audit.record call names an Action (no string literal slips past the enum), and
    record() itself refuses a string that is not one: the enum is everything the log holds."""
    literals = []
    for path in [
        *ROOT.glob("bot/**/*.py"),
        *ROOT.glob("handlers/*.py"),
        *ROOT.glob("storage/*.py"),
    ]:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "record"
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id == "audit"
                and len(node.args) > 1
                and isinstance(node.args[1], ast.Constant)
            ):
                literals.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not literals, literals
    assert {a.value for a in Action} >= {"patient.imported", "signin.dob_mismatch"}


async def test_record_refuses_an_action_with_no_words(db: Database) -> None:
    with pytest.raises(ValueError, match=r"patient\.teleported"):
        async with db.transaction() as conn:
            await audit.record(conn, "patient.teleported")  # type: ignore[arg-type]


# --- End to end ---------------------------------------------------------------------------


def _log_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("•")]


async def test_an_import_reads_in_words(server: BotAPIServer, bot_db: Database) -> None:
    avery = server.user(700, "Avery")
    await signed_in(
        bot_db, avery, "Avery T.", dt.date(1980, 6, 15), email="Avery.Testcase@example.org"
    )
    await fhir.import_bundle(bot_db, fhir.load_bundle(DATA / "valid_bundle.json"), SYDNEY)
    await avery.send("/activity")
    lines = _log_lines(avery.last.text)
    assert "The practice updated this patient's details from the practice's records" in lines[0]
    assert "patient.imported" not in avery.last.text


async def test_wrong_dates_of_birth_on_an_unused_invite_are_a_strangers(
    server: BotAPIServer, bot_db: Database
) -> None:
    await make_practitioner(bot_db, 500)
    doctor = server.user(500, "Priya")
    await signed_in(bot_db, doctor, "Priya Rao", dt.date(1970, 1, 1))
    await doctor.send("/language")
    await doctor.tap("Tiếng Việt")
    link = await make_invite(bot_db, "Ann Lee", email="ann@example.com", invited_by=500)
    eve = server.user(666, "Eve")
    await eve.open_link(link)
    for day in (1, 2, 3):
        await eve.send(f"{day}/1/1985")
    assert "now locked" in eve.last.text
    # The practitioner hears whose link it was, in their own language.
    notice = await doctor.wait_for("khóa")
    assert notice.text == (
        "Liên kết mời bạn gửi cho Ann Lee đã bị khóa sau ba lần nhập sai ngày sinh. Nếu Ann "
        "Lee vẫn cần truy cập, hãy gửi cho họ lời mời mới bằng /invite."
    )
    ann = server.user(700, "Ann")
    await signed_in(bot_db, ann, "Ann Lee", email="ann@example.com")  # with a new link
    await ann.send("/activity")
    log = ann.last.text
    lines = _log_lines(log)
    stranger = [line for line in lines if "Someone who opened your invite link" in line]
    assert len(stranger) == 3, log
    assert (
        "invite link typed a third wrong date of birth, which locked the invite link"
        in (stranger[0])
    )
    assert all("typed a wrong date of birth" in line for line in stranger[1:])
    assert [line for line in lines if "The practice" in line] == [
        line for line in lines if "The practice sent an invite link to this portal" in line
    ]
    assert "refused" not in log


async def test_decisions_say_whose_access_and_refusals_what_was_tried(
    server: BotAPIServer, bot_db: Database
) -> None:
    ann, bob, ann_id, _, grant_id = await _couple(bot_db, server)
    eve = server.user(666, "Eve")
    await signed_in(bot_db, eve, "Eve Vil", dt.date(1970, 1, 1))
    await eve.send("/access")
    for data in (
        RevokeAccess(grant_id).encode(),
        ChangeLevel(grant_id, Level.ADMINISTRATIVE).encode(),
        OpenGrant(grant_id).encode(),
    ):
        await eve.tap_data(data, message=eve.last)
    await bob.send("/access")
    await bob.tap_data(TurnLogPage(ann_id, 0).encode(), message=bob.last)
    await ann.send("/access")
    await ann.tap("Bob Lee (accesses you) ›")
    await ann.tap("Make it View", expect=2)
    await ann.tap("Bob Lee (accesses you) ›")
    await ann.tap("Revoke access")
    assert ann.last.text == (
        "Revoke Bob Lee's access to your portal (Clinical, View)? It stops at once."
    )
    await ann.tap("Yes", expect=2)
    await ann.send("/activity")
    lines = [line.split(" — ", 1)[1] for line in _log_lines(ann.last.text)]
    assert lines[:7] == [
        "Ann Lee revoked Bob Lee's access",
        "Ann Lee changed Bob Lee's access from Clinical, Edit to Clinical, View",
        "Bob Lee tried to read this access log (refused)",
        "Eve Vil tried to open the settings of Bob Lee's access (refused)",
        "Eve Vil tried to change Bob Lee's access (refused)",
        "Eve Vil tried to revoke Bob Lee's access (refused)",
        "Ann Lee approved Bob Lee's access (Clinical, Edit)",
    ]
    assert "tried to decide" not in ann.last.text


async def _family(db: Database, server: BotAPIServer) -> tuple[int, int, int]:
    """Ann holds Mia (Child, Clinical, Edit) and has shared her with Bob (Administrative,
    View); Ann and Bob are signed in. Their patient ids: Ann, Bob, Mia."""
    ann, bob = server.user(700, "Ann"), server.user(701, "Bob")
    await signed_in(db, ann, "Ann Lee", email="ann@example.com")
    await signed_in(db, bob, "Bob Lee", dt.date(1984, 6, 1), email="bob@example.com")
    ann_id, bob_id = await _patient_id(db, 700), await _patient_id(db, 701)
    request = AccessRequest("Mia Lee", Relationship.CHILD, None, Level.CLINICAL, Role.EDIT)
    mia, _ = await access.create_dependent(db, ann_id, "Mia Lee", dt.date(2018, 5, 3), request)
    offer = await access.offer_by_email(
        db, ann_id, mia.id, "bob@example.com", Level.ADMINISTRATIVE, Role.VIEW, 14
    )
    assert offer is not None
    await access.decide(db, offer.id, bob_id, approve=True)
    return ann_id, bob_id, mia.id


async def test_activity_follows_switch(server: BotAPIServer, bot_db: Database) -> None:
    ann_id, bob_id, mia_id = await _family(bot_db, server)
    ann, bob = server.user(700, "Ann"), server.user(701, "Bob")
    async with bot_db.transaction() as conn:  # enough events for a second page
        for _ in range(10):
            await audit.record(
                conn, Action.VIEW_INVOICES, actor_patient_id=bob_id, subject_patient_id=mia_id
            )
    await ann.send("/switch")
    await ann.tap("Mia Lee (Child) · Clinical")
    log = (await ann.send("/activity"))[-1]
    top = (
        "👥 Viewing: Mia Lee (Child) · Clinical, Edit · until 3 May 2030 — Mia Lee turns 12"
        "\n\n📜 Mia Lee's access log\n"
    )
    assert log.text.startswith(top), log.text
    await ann.tap("▶", message=log)
    assert log.text.startswith(top), log.text
    lines = [line.split(" — ", 1)[1] for line in _log_lines(log.text)]
    assert lines == [  # the oldest six, newest first
        "Bob Lee viewed invoices",
        "Bob Lee accepted access (Administrative, View)",
        "Ann Lee offered Bob Lee access (Administrative, View)",
        "Ann Lee took access to this account as the person who holds it",
        "Ann Lee asked for access (Clinical, Edit)",
        "Ann Lee created this account",
    ]
    # Bob may look at Mia's portal, not read her log: his own, and he is told why.
    await bob.send("/switch")
    await bob.tap("Mia Lee")
    await bob.send("/activity")
    assert bob.last.text.startswith(
        "👥 Viewing: Mia Lee (Child) · Administrative, View · until 3 May 2036 — Mia Lee turns 18"
        "\n\n"
        "Only Mia Lee, or the person who holds their account, can read Mia Lee's access log. "
        "Here is yours.\n\n📜 Your access log\n"
    ), bob.last.text
    async with bot_db.read() as conn:  # choosing his own log is not a refused attempt
        assert not [e for e in await audit.by_action(conn, Action.GRANT_DECIDE)]
    # Back in her own portal, Ann's /activity is hers again.
    await ann.send("/switch")
    await ann.tap("Me (Ann Lee)")
    await ann.send("/activity")
    assert ann.last.text.startswith("👤 Viewing: your own portal\n\n📜 Your access log\n")
    assert ann_id


async def test_revoking_access_to_a_dependent_names_both(
    server: BotAPIServer, bot_db: Database
) -> None:
    await _family(bot_db, server)
    ann = server.user(700, "Ann")
    await ann.send("/access")
    await ann.tap("Bob Lee (accesses Mia Lee) ›")
    await ann.tap("Revoke access")
    assert ann.last.text == (
        "Revoke Bob Lee's access to Mia Lee's portal (Administrative, View)? It stops at once."
    )
    bob = server.user(701, "Bob")
    await bob.send("/access")
    await bob.tap("Mia Lee ›")
    await bob.tap("Stop accessing")
    assert bob.last.text == (
        "Stop accessing Mia Lee's portal (Administrative, View)? You'll need a new approval "
        "to return."
    )
