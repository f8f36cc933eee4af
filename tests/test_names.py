"""Names that would show blank on a card are asked again, wherever a name is typed
(issue #17, item 11): /addpatient and /invite, end to end over real HTTP."""

from __future__ import annotations

import unicodedata

from storage import Database
from tests.botapi import BotAPIServer
from tests.helpers import make_practitioner, signed_in
from tests.test_units import INVISIBLE_NAMES


async def _names(db: Database) -> list[str]:
    async with db.read() as conn:
        cur = await conn.execute("SELECT full_name FROM patients ORDER BY id")
        return [row[0] for row in await cur.fetchall()]


async def test_addpatient_asks_again_for_a_name_that_shows_blank(
    server: BotAPIServer, bot_db: Database
) -> None:
    mum = server.user(700, "Ann")
    await signed_in(bot_db, mum, "Ann Lee")
    await mum.send("/addpatient")
    for blank in INVISIBLE_NAMES:
        await mum.send(blank)
        assert "Please type the patient's full name" in mum.last.text, (blank, mum.transcript())
    # Trimmed, collapsed and NFC (e + U+0301 becomes é), and that is what is stored.
    await mum.send("  Mi\u0301a \u3000  Lee  ")
    assert "What is Mía Lee to you?" in mum.last.text, mum.transcript()
    await mum.tap("Daughter")
    await mum.tap("Clinical")
    await mum.tap("Edit")
    await mum.tap("No, create an account for them")
    await mum.send("3/5/2018")
    await mum.tap("✅ Confirm")
    assert "account is ready" in mum.last.text, mum.transcript()
    stored = (await _names(bot_db))[-1]
    assert stored == "M\u00eda Lee" and unicodedata.is_normalized("NFC", stored)
    assert not server.errors, server.errors


async def test_invite_asks_again_for_a_name_that_shows_blank(
    server: BotAPIServer, bot_db: Database
) -> None:
    await make_practitioner(bot_db, 500)
    doctor = server.user(500, "Priya")
    await doctor.send("/invite")
    for blank in INVISIBLE_NAMES:
        await doctor.send(blank)
        assert "Please type the patient's full name" in doctor.last.text, (
            blank,
            doctor.transcript(),
        )
    await doctor.send("\u200b  Bo\u0301   Tran \u2800")
    assert "Bó Tran's date of birth" in doctor.last.text, doctor.transcript()
    await doctor.send("30/12/1990")
    await doctor.tap("Skip", expect=2)
    assert await _names(bot_db) == ["B\u00f3 Tran"]
    assert not server.errors, server.errors
