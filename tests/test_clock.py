"""One injected clock: everything that asks what time it is asks storage/clock.py."""

from __future__ import annotations

import datetime as dt
import zoneinfo

from bot import invitations
from bot.invitations import InviteRequest, InviteState
from storage import Database, clock
from storage.clock import FixedClock
from storage.db import now

SYDNEY = zoneinfo.ZoneInfo("Australia/Sydney")
START = dt.datetime(2030, 6, 1, 9, 0, tzinfo=SYDNEY)


def test_a_fixed_clock_is_what_every_reader_sees_and_only_inside_the_block() -> None:
    with clock.use(FixedClock(START)) as fixed:
        assert now() == int(START.timestamp()) == clock.now()
        assert clock.today(SYDNEY) == dt.date(2030, 6, 1)
        fixed.advance(days=1, seconds=60)
        assert clock.moment(SYDNEY) == START + dt.timedelta(days=1, minutes=1)
    assert abs(now() - dt.datetime.now(dt.UTC).timestamp()) < 5  # back on the system's


async def test_an_invite_expires_when_the_clock_says_so(db: Database) -> None:
    """The invite's expiry is written and checked with the injected clock (no sleeping)."""
    with clock.use(FixedClock(START)) as fixed:
        new = await invitations.create_invite(
            db, InviteRequest("Ann Lee", dt.date(1985, 2, 3), None), ttl_days=14
        )
        assert new.invite.created_at == int(START.timestamp())
        check = await invitations.check_invite(db, new.token, 700)
        assert check.state is InviteState.VALID
        fixed.advance(days=14)
        check = await invitations.check_invite(db, new.token, 700)
        assert check.state is InviteState.EXPIRED
