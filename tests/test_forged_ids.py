"""Forged callback data naming ids that do not exist: every kind of button is refused with
its usual kind alert, and the refusal is audited against the one who tapped (the audit
event's subject is NULL when no such patient exists), never "Something went wrong"."""

from __future__ import annotations

import datetime as dt
import logging

import pytest

from storage import Database
from storage.models import AuditEvent
from tests.botapi import BotAPIServer
from tests.helpers import signed_in

EVE_TG = 666
FORGED = (0, 999_999_999)
KINDS = [
    "log:{id}:0",
    "ap:ok:{id}",
    "ap:no:{id}",
    "ap:chg:{id}",
    "ap:back:{id}",
    "ap:ok:{id}:av",
    "ac:g:{id}",
    "ac:rv:{id}",
    "ac:rvy:{id}",
    "ac:lf:{id}",
    "ac:lfy:{id}",
    "ac:wd:{id}",
    "ac:lv:{id}:a",
    "ac:rl:{id}:v",
    "ac:dep:{id}",
    "ac:own:{id}",
    "sw:{id}",
    "sh:start:{id}",
    "pg:u:{id}:0",
    "pg:p:{id}:0",
    "pg:i:{id}:0",
    "pg:r:{id}:0",
    "pg:d:{id}:0",
    "apt:ask:{id}:{id}:0",
    "apt:keep:{id}:{id}:0",
    "apt:yes:{id}:{id}:0",
    "apt:ok:{id}:{id}:0",
]


async def _refusals(db: Database) -> list[AuditEvent]:
    async with db.read() as conn:
        rows = await conn.execute_fetchall(
            "SELECT * FROM audit_events WHERE outcome = 'refused' ORDER BY id"
        )
    return [AuditEvent.model_validate(dict(row)) for row in rows]


@pytest.mark.parametrize("kind", KINDS)
async def test_a_forged_id_is_refused_kindly_and_audited(
    server: BotAPIServer, bot_db: Database, kind: str, caplog: pytest.LogCaptureFixture
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
        data = kind.format(id=ident)
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
