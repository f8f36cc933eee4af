"""Forged callback data naming ids that do not exist: every kind of button is refused with
its usual kind alert, and the refusal is audited against the one who tapped (the audit
event's subject is NULL when no such patient exists), never "Something went wrong"."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable

import pytest

from bot.access import Area
from bot.callbacks import (
    ApproveAs,
    ApproveRequest,
    ApproveWithChanges,
    AskToCancel,
    AskToLeave,
    AskToRevoke,
    AskToSuspend,
    BackToRequest,
    CancelAppointment,
    ChangeLevel,
    ChangeRole,
    ConfirmAppointment,
    DenyRequest,
    GiveOwnLogin,
    KeepAppointment,
    OpenDependent,
    OpenGrant,
    OpenPatientAccess,
    RevokeAccess,
    StopAccessing,
    SuspendAccess,
    SwitchTo,
    TurnLogPage,
    TurnPage,
    WithdrawRequest,
)
from storage import Database
from storage.models import AuditEvent
from storage.vocabulary import Level, Role
from tests.botapi import BotAPIServer
from tests.helpers import signed_in

EVE_TG = 666
FORGED = (0, 999_999_999)
# Each builds the data of one kind of button for a given id.
KINDS: list[Callable[[int], str]] = [
    lambda i: TurnLogPage(i, 0).encode(),
    lambda i: ApproveRequest(i).encode(),
    lambda i: DenyRequest(i).encode(),
    lambda i: ApproveWithChanges(i).encode(),
    lambda i: BackToRequest(i).encode(),
    lambda i: ApproveAs(i, Level.ADMINISTRATIVE, Role.VIEW).encode(),
    lambda i: OpenGrant(i).encode(),
    lambda i: AskToRevoke(i).encode(),
    lambda i: RevokeAccess(i).encode(),
    lambda i: AskToLeave(i).encode(),
    lambda i: StopAccessing(i).encode(),
    lambda i: WithdrawRequest(i).encode(),
    lambda i: ChangeLevel(i, Level.ADMINISTRATIVE).encode(),
    lambda i: ChangeRole(i, Role.VIEW).encode(),
    lambda i: OpenDependent(i).encode(),
    lambda i: GiveOwnLogin(i).encode(),
    lambda i: SwitchTo(i).encode(),
    lambda i: f"sh:start:{i}",  # the share flow's entry point (conversations/share.py)
    lambda i: TurnPage(Area.APPOINTMENTS, i, 0).encode(),
    lambda i: TurnPage(Area.APPOINTMENTS, i, 0, past=True).encode(),
    lambda i: TurnPage(Area.INVOICES, i, 0).encode(),
    lambda i: TurnPage(Area.RECORDS, i, 0).encode(),
    lambda i: TurnPage(Area.DETAILS, i, 0).encode(),
    lambda i: AskToCancel(i, i, 0).encode(),
    lambda i: KeepAppointment(i, i, 0).encode(),
    lambda i: CancelAppointment(i, i, 0).encode(),
    lambda i: ConfirmAppointment(i, i, 0).encode(),
    # A practitioner's /access, tapped by a patient who is not one
    lambda i: OpenPatientAccess(i).encode(),
    lambda i: AskToSuspend(i, i).encode(),
    lambda i: SuspendAccess(i, i).encode(),
]


async def _refusals(db: Database) -> list[AuditEvent]:
    async with db.read() as conn:
        rows = await conn.execute_fetchall(
            "SELECT * FROM audit_events WHERE outcome = 'refused' ORDER BY id"
        )
    return [AuditEvent.model_validate(dict(row)) for row in rows]


@pytest.mark.parametrize("kind", KINDS, ids=lambda kind: kind(0))
async def test_a_forged_id_is_refused_kindly_and_audited(
    server: BotAPIServer,
    bot_db: Database,
    kind: Callable[[int], str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.ERROR)
    eve = server.user(EVE_TG, "Eve")
    await signed_in(bot_db, eve, "Eve Vil", dt.date(1970, 1, 1))
    async with bot_db.read() as conn:
        rows = await conn.execute_fetchall(
            "SELECT patient_id FROM logins WHERE telegram_user_id = ?", (EVE_TG,)
        )
    eve_id = next(iter(rows))[0]
    home = (await eve.send("/start"))[-1]
    for ident in FORGED:
        data = kind(ident)
        before = len(await _refusals(bot_db))
        await eve.tap_data(data, message=home)
        await server.wait_idle()
        text, alert = eve.alerts[-1]
        assert alert and text and "Something went wrong" not in text, (data, eve.alerts)
        new = (await _refusals(bot_db))[before:]
        assert new, (data, "not audited")
        assert all(e.actor_patient_id == eve_id for e in new), (data, new)
        assert all(e.subject_patient_id is None for e in new), (data, new)
    # A second refusal may re-render the same picture: "not modified" is expected there.
    refused = [e for e in server.errors if "message is not modified" not in e["description"]]
    assert not refused, refused
    assert not [r for r in caplog.records if r.name == "portal.errors"], caplog.text
