"""The sweep (bot/sweep.py) and what people do about the policy (bot/safeguarding.py), on
a real database with the injected clock: each notice and each change once, whatever runs
it how often."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import zoneinfo
from pathlib import Path

from bot import access, invitations, policy, safeguarding
from bot.access import AccessRequest, Act, Area
from bot.invitations import InviteRequest, InviteState
from bot.safeguarding import Outcome
from bot.sweep import sweep
from storage import Database, audit, clock, grants, patients, practitioners
from storage.clock import FixedClock
from storage.db import fetch_all
from storage.vocabulary import Action, GrantStatus, Level, Relationship, Role

SYDNEY = zoneinfo.ZoneInfo("Australia/Sydney")
DAY = 86400
MIA_BORN = dt.date(2015, 6, 10)
RULES = policy.Policy(tz=SYDNEY)
DOCTOR = 900


def at(y: int, m: int, d: int, hh: int = 0, mm: int = 0) -> dt.datetime:
    return dt.datetime(y, m, d, hh, mm, tzinfo=SYDNEY)


def ts(moment: dt.datetime) -> int:
    return int(moment.timestamp())


async def _signed_in(db: Database, name: str, email: str, tg: int, by: int | None = None) -> int:
    born = dt.date(1985, 2, 3)
    new = await invitations.create_invite(db, InviteRequest(name, born, email), 14, invited_by=by)
    assert (await invitations.sign_in(db, new.invite.id, tg, "en", born)).state is InviteState.VALID
    return new.patient.id


async def _outbox(db: Database) -> list[tuple[str, int | None, int | None, str | None]]:
    async with db.read() as conn:
        rows = await fetch_all(
            conn, "SELECT kind, patient_id, chat_id, detail FROM outbox ORDER BY id"
        )
    return [(r[0], r[1], r[2], r[3]) for r in rows]


async def _events(db: Database, *actions: Action) -> list[tuple[str, str | None]]:
    found = []
    async with db.read() as conn:
        for action in actions:
            found += [(e.action, e.detail) for e in await audit.by_action(conn, action)]
    return found


async def _family(db: Database) -> tuple[int, int, int]:
    """Mum (invited by Dr Rao), her daughter Mia (born 10 June 2015, Clinical/Edit) and
    Dad, with whom Mum shares Mia (Clinical/View)."""
    async with db.transaction() as conn:
        await practitioners.upsert(conn, DOCTOR, "Dr Rao")
    mum = await _signed_in(db, "Ann Lee", "ann@example.com", 700, by=DOCTOR)
    dad = await _signed_in(db, "Bob Lee", "bob@example.com", 701)
    mia, _grant = await access.create_dependent(
        db,
        mum,
        "Mia Lee",
        MIA_BORN,
        AccessRequest("Mia Lee", Relationship.DAUGHTER, None, Level.CLINICAL, Role.EDIT),
    )
    offer = await access.offer_by_email(
        db, mum, mia.id, "bob@example.com", Level.CLINICAL, Role.VIEW, 14
    )
    assert offer is not None
    assert (await access.decide(db, offer.id, dad, True)).grant is not None
    return mum, dad, mia.id


async def test_a_childs_life_from_11_to_18_each_notice_and_change_once(db: Database) -> None:
    with policy.using(RULES), clock.use(FixedClock(at(2020, 1, 1))) as fixed:
        mum, dad, mia = await _family(db)
        before = len(await _outbox(db))

        # 30 days before her 12th birthday: both with Clinical access hear what will change,
        # and Mum, who decides for Mia, hears about Dad's too.
        fixed.set(at(2027, 5, 11, 9))
        report = await sweep(db, RULES)
        again = await sweep(db, RULES)
        assert report.changes == [] and len(report.notices) == 3, report
        assert again.notices == [] and again.changes == []
        ahead = (await _outbox(db))[before:]
        assert [(k, p) for k, p, _c, _d in ahead] == [
            ("policy_ahead", mum),
            ("policy_ahead", dad),
            ("policy_ahead", mum),
        ]
        assert '"as": "holder"' in (ahead[2][3] or "")
        assert all('"days": 30' in (d or "") and '"rule": "teen"' in (d or "") for *_, d in ahead)

        # A week before: the 7-day notice. On the day: the change, recorded once.
        fixed.set(at(2027, 6, 3, 9))
        assert len((await sweep(db, RULES)).notices) == 3
        fixed.set(at(2027, 6, 10, 0, 5))
        report = await sweep(db, RULES)
        assert len(report.changes) == 2 and len(report.notices) == 3
        assert (await sweep(db, RULES)).changes == []
        assert await _events(db, Action.POLICY_LIMITED) == [
            ("grant.limited_by_policy", "teen"),
            ("grant.limited_by_policy", "teen"),
        ]
        async with db.read() as conn:
            stored = [e.grant.level for e in await grants.accessors_of(conn, mia)]
        assert stored == [Level.ADMINISTRATIVE, Level.ADMINISTRATIVE]  # tidied

        # 14: no login yet, so Dr Rao (who invited Mum) is asked to invite her; Mum is told.
        fixed.set(at(2029, 6, 10, 9))
        report = await sweep(db, RULES)
        assert len(report.changes) == 1 and len(report.notices) == 2, report
        assert (await sweep(db, RULES)).notices == []
        kinds = [(k, p, c) for k, p, c, _d in (await _outbox(db))[-2:]]
        assert kinds == [("invite_asked", None, DOCTOR), ("holder_told", mum, None)]

        # 30 days before 18: Mum and Dad hear their access ends unless Mia keeps it.
        fixed.set(at(2033, 5, 12, 9))
        assert len((await sweep(db, RULES)).notices) == 3
        # 18: both accesses end, Mum no longer holds Mia's account, Dr Rao is asked again.
        fixed.set(at(2033, 6, 10, 9))
        report = await sweep(db, RULES)
        assert len(report.changes) == 3, report  # two accesses, and the holdership
        assert (await sweep(db, RULES)).changes == []
        async with db.read() as conn:
            assert await grants.accessors_of(conn, mia) == []
            assert (await patients.get(conn, mia)).holder_id is None  # type: ignore[union-attr]
        assert [d for _a, d in await _events(db, Action.POLICY_ENDED)] == ["adult", "adult"]
        assert await _events(db, Action.POLICY_HOLDER_ENDED) == [("patient.holder_ended", "adult")]
        last = [(k, p, c) for k, p, c, _d in await _outbox(db)][-4:]
        assert last == [
            ("policy_done", mum, None),
            ("policy_done", dad, None),
            ("invite_asked", None, DOCTOR),
            ("holder_told", mum, None),
        ]


async def test_two_workers_sweeping_at_once_do_everything_once(db_path: Path) -> None:
    with policy.using(RULES), clock.use(FixedClock(at(2020, 1, 1))) as fixed:
        first = Database(db_path)
        await first.migrate()
        await _family(first)
        second = Database(db_path)
        await second.migrate()
        try:
            fixed.set(at(2033, 6, 10, 9))  # everything at once: the adult birthday
            one, two = await asyncio.gather(sweep(first, RULES), sweep(second, RULES))
            assert len(one.changes) + len(two.changes) == 3
            events = await _events(first, Action.POLICY_ENDED, Action.POLICY_HOLDER_ENDED)
            assert len(events) == 3
            kinds = [k for k, *_ in await _outbox(first)]
            assert kinds.count("policy_done") == 2 and kinds.count("invite_asked") == 1
        finally:
            await second.close()
            await first.close()


async def test_a_dry_run_changes_nothing_and_says_what_the_sweep_will_do(db: Database) -> None:
    with policy.using(RULES), clock.use(FixedClock(at(2020, 1, 1))) as fixed:
        await _family(db)
        fixed.set(at(2033, 6, 10, 9))
        queued = len(await _outbox(db))
        dry = await sweep(db, RULES, dry_run=True)
        assert len(await _outbox(db)) == queued and await _events(db, Action.POLICY_ENDED) == []
        real = await sweep(db, RULES)
        assert (dry.changes, dry.notices) == (real.changes, real.notices)
        assert "would make 3 changes" in dry.summary()


async def test_access_from_before_the_term_gets_an_end_date_from_that_day(db: Database) -> None:
    with policy.using(RULES), clock.use(FixedClock(at(2026, 3, 2, 10))) as fixed:
        ann = await _signed_in(db, "Ann Lee", "ann@example.com", 700)
        bob = await _signed_in(db, "Bob Lee", "bob@example.com", 701)
        ask = AccessRequest("Ann", Relationship.PARTNER, None, Level.CLINICAL, Role.VIEW)
        sent = await access.request_by_email(db, bob, "ann@example.com", ask, 14)
        assert sent.grant is not None
        await access.decide(db, sent.grant.id, ann, True)
        async with db.transaction() as conn:  # as it was approved before this landed
            await conn.execute("UPDATE grants SET ends_at = NULL, began_at = NULL")
        fixed.set(at(2026, 12, 1, 9))
        report = await sweep(db, RULES)
        ends = ts(at(2026, 12, 1, 9)) + 548 * DAY
        async with db.read() as conn:
            assert (await grants.get(conn, sent.grant.id)).ends_at == ends  # type: ignore[union-attr]
        assert len(report.changes) == 1 and len(report.notices) == 2
        assert (await sweep(db, RULES)).notices == []
        assert [k for k, *_ in await _outbox(db)][-2:] == ["end_date_set", "end_date_set"]
        assert await _events(db, Action.POLICY_END_DATE) == [("grant.end_date_set", "term")]
        # The usual notices before that end, and the end itself.
        fixed.set(dt.datetime.fromtimestamp(ends - 7 * DAY, SYDNEY))
        assert len((await sweep(db, RULES)).notices) == 2
        fixed.set(dt.datetime.fromtimestamp(ends, SYDNEY))
        assert len((await sweep(db, RULES)).changes) == 1
        async with db.read() as conn:
            ended = await grants.get(conn, sent.grant.id)
        assert ended is not None and ended.status is GrantStatus.EXPIRED


async def test_only_the_patient_renews_and_renewing_moves_the_end(db: Database) -> None:
    with policy.using(RULES), clock.use(FixedClock(at(2026, 3, 2, 10))) as fixed:
        ann = await _signed_in(db, "Ann Lee", "ann@example.com", 700)
        bob = await _signed_in(db, "Bob Lee", "bob@example.com", 701)
        ask = AccessRequest("Ann", Relationship.PARTNER, None, Level.CLINICAL, Role.VIEW)
        sent = await access.request_by_email(db, bob, "ann@example.com", ask, 14)
        assert sent.grant is not None
        await access.decide(db, sent.grant.id, ann, True)
        first_end = ts(at(2026, 3, 2, 10)) + 548 * DAY
        fixed.set(dt.datetime.fromtimestamp(first_end - 10 * DAY, SYDNEY))
        assert (await safeguarding.renew(db, bob, sent.grant.id)).outcome is Outcome.NOT_YOURS
        assert await _events(db, Action.GRANT_DECIDE) == [("grant.decide", "renew")]
        renewed = await safeguarding.renew(db, ann, sent.grant.id)
        assert renewed.outcome is Outcome.DONE and renewed.grant is not None
        assert renewed.grant.ends_at == first_end - 10 * DAY + 548 * DAY
        fixed.set(dt.datetime.fromtimestamp(first_end + DAY, SYDNEY))
        async with db.read() as conn:
            assert (await access.permission(conn, bob, ann, Area.RECORDS, Act.VIEW)).allowed
        assert (await sweep(db, RULES)).changes == []
        assert [k for k, *_ in await _outbox(db)][-1] == "renewed"


async def test_the_young_person_keeps_one_access_and_approves_clinical(db: Database) -> None:
    with policy.using(RULES), clock.use(FixedClock(at(2020, 1, 1))) as fixed:
        mum, dad, mia = await _family(db)
        fixed.set(at(2029, 7, 1))  # 14: Mia signs in with her own login
        own = await invitations.create_own_login_invite(db, mum, mia, 14)
        assert own is not None
        signed = await invitations.sign_in(db, own.invite.id, 702, "en", MIA_BORN)
        assert signed.state is InviteState.VALID
        report = await sweep(db, RULES)
        cards = [(k, p) for k, p, _c, _d in await _outbox(db) if k == "young_review"]
        assert cards.count(("young_review", mia)) == 4  # continue and Clinical, for each
        assert report.notices and (await sweep(db, RULES)).notices == []
        async with db.read() as conn:
            mum_grant, dad_grant = (e.grant for e in await grants.accessors_of(conn, mia))
        # Nobody else answers for Mia.
        for who in (mum, dad):
            assert (await safeguarding.approve_clinical(db, who, dad_grant.id)).outcome is (
                Outcome.NOT_YOURS
            )
        done = await safeguarding.approve_clinical(db, mia, dad_grant.id)
        assert done.outcome is Outcome.DONE and done.grant is not None
        assert done.grant.level is Level.CLINICAL
        async with db.read() as conn:
            assert (await access.permission(conn, dad, mia, Area.RECORDS, Act.VIEW)).allowed
            assert not (await access.permission(conn, mum, mia, Area.RECORDS, Act.VIEW)).allowed
        assert (await safeguarding.continue_access(db, mia, dad_grant.id)).outcome is Outcome.DONE
        kept = await safeguarding.keep_after_adulthood(db, mia, dad_grant.id)
        assert kept.outcome is Outcome.DONE and kept.grant is not None
        assert kept.grant.ends_at == ts(at(2033, 6, 10)) + 548 * DAY
        fixed.set(at(2033, 6, 10, 9))
        report = await sweep(db, RULES)
        async with db.read() as conn:
            left = [e.grant.id for e in await grants.accessors_of(conn, mia)]
            assert (await access.permission(conn, dad, mia, Area.RECORDS, Act.VIEW)).allowed
        assert left == [dad_grant.id]  # Mum's ended, Dad's was kept
        assert [d for _a, d in await _events(db, Action.POLICY_ENDED)] == ["adult"]
        kinds = {k for k, *_ in await _outbox(db)}
        assert "invite_asked" not in kinds  # she has a login: nobody needs to invite her
        assert (await safeguarding.keep_after_adulthood(db, mia, mum_grant.id)).outcome is (
            Outcome.ALREADY
        )


async def test_a_holder_whose_dependent_has_a_login_hears_once_that_holding_ended_at_18(
    db: Database,
) -> None:
    with policy.using(RULES), clock.use(FixedClock(at(2020, 1, 1))) as fixed:
        mum, _dad, mia = await _family(db)
        fixed.set(at(2029, 7, 1))  # 14: Mia signs in with her own login
        own = await invitations.create_own_login_invite(db, mum, mia, 14)
        assert own is not None
        signed = await invitations.sign_in(db, own.invite.id, 702, "en", MIA_BORN)
        assert signed.state is InviteState.VALID
        await sweep(db, RULES)
        fixed.set(at(2033, 6, 10, 9))  # her 18th birthday
        first = await sweep(db, RULES)
        fixed.set(at(2033, 6, 10, 9, 5))
        second = await sweep(db, RULES)
        assert second.changes == [] and second.notices == []
        assert any("(holder) about Mia Lee (rule adult)" in n for n in first.notices), first
        told = [
            (p, json.loads(d or "{}"))
            for k, p, _c, d in await _outbox(db)
            if k == "holder_told" and '"rule": "adult"' in (d or "")
        ]
        assert told == [(mum, {"rule": "adult", "asked": False})]
        async with db.read() as conn:
            assert (await patients.get(conn, mia)).holder_id is None  # type: ignore[union-attr]


async def test_stop_all_access_and_a_suspension_tell_only_that_it_ended(db: Database) -> None:
    with policy.using(RULES), clock.use(FixedClock(at(2026, 3, 2))):
        async with db.transaction() as conn:
            await practitioners.upsert(conn, DOCTOR, "Dr Rao")
        ann = await _signed_in(db, "Ann Lee", "ann@example.com", 700)
        bob = await _signed_in(db, "Bob Lee", "bob@example.com", 701)
        cat = await _signed_in(db, "Cat Ng", "cat@example.com", 702)
        ask = AccessRequest("Ann", Relationship.PARTNER, None, Level.CLINICAL, Role.VIEW)
        first = await access.request_by_email(db, bob, "ann@example.com", ask, 14)
        waiting = await access.request_by_email(db, cat, "ann@example.com", ask, 14)
        assert first.grant is not None and waiting.grant is not None
        await access.decide(db, first.grant.id, ann, True)
        assert not (await safeguarding.stop_all_access(db, bob, ann)).allowed
        assert await _events(db, Action.GRANT_DECIDE) == [("grant.decide", "stop_all")]
        stopped = await safeguarding.stop_all_access(db, ann, ann)
        assert (stopped.allowed, stopped.ended, stopped.declined) == (True, 1, 1)
        async with db.read() as conn:
            assert await grants.accessors_of(conn, ann) == []
            assert (await grants.get(conn, waiting.grant.id)).status is GrantStatus.DENIED  # type: ignore[union-attr]
        told = [(k, p) for k, p, _c, _d in await _outbox(db)][-1]
        assert told == ("access_ended_quietly", bob)

        again = await access.request_by_email(db, bob, "ann@example.com", ask, 14)
        assert again.grant is not None
        await access.decide(db, again.grant.id, ann, True)
        listed = await safeguarding.who_has_access(db, ann)
        assert listed is not None and [line.entry.grant.id for line in listed[1]] == [
            again.grant.id
        ]
        assert listed[1][0].next is not None and listed[1][0].next.rule is policy.Rule.TERM
        wrong = await safeguarding.suspend_by_practitioner(db, again.grant.id, DOCTOR, cat)
        assert wrong.outcome is Outcome.NOT_YOURS
        done = await safeguarding.suspend_by_practitioner(db, again.grant.id, DOCTOR, ann)
        assert done.outcome is Outcome.DONE
        last = [(k, p, d) for k, p, _c, d in await _outbox(db)][-2:]
        assert [(k, p) for k, p, _d in last] == [
            ("access_ended_quietly", bob),
            ("access_ended_quietly", ann),
        ]
        suspended = await _events(db, Action.GRANT_SUSPENDED)
        assert suspended == [("grant.suspended", None)]
        # Only a practitioner: someone else naming the right grant and patient is refused.
        third = await access.request_by_email(db, bob, "ann@example.com", ask, 14)
        assert third.grant is not None
        await access.decide(db, third.grant.id, ann, True)
        refused = await safeguarding.suspend_by_practitioner(db, third.grant.id, 701, ann)
        assert refused.outcome is Outcome.NOT_YOURS
        assert (await _events(db, Action.GRANT_DECIDE))[-1] == ("grant.decide", "practice")
        async with db.read() as conn:
            assert (await grants.get(conn, third.grant.id)).status is GrantStatus.ACTIVE  # type: ignore[union-attr]


async def test_a_change_undone_by_hand_is_not_recorded_or_told_twice(db: Database) -> None:
    """Mum sets her access to Mia back to Clinical after Mia turned 12: the check still
    limits it (only Mia can approve that), and the sweep, which did the teen change once,
    neither records nor tells it again."""
    with policy.using(RULES), clock.use(FixedClock(at(2020, 1, 1))) as fixed:
        mum, _dad, mia = await _family(db)
        fixed.set(at(2027, 6, 10, 9))
        assert len((await sweep(db, RULES)).changes) == 2
        async with db.read() as conn:
            mine = await grants.active(conn, mum, mia)
        assert mine is not None and mine.level is Level.ADMINISTRATIVE
        changed = await access.change_access(db, mum, mine.id, Level.CLINICAL, None)
        assert changed.grant is not None and changed.grant.level is Level.CLINICAL
        async with db.read() as conn:
            assert not (await access.permission(conn, mum, mia, Area.RECORDS, Act.VIEW)).allowed
        queued = len(await _outbox(db))
        fixed.set(at(2027, 6, 10, 10))
        report = await sweep(db, RULES)
        assert report.changes == [] and report.notices == []
        assert len(await _outbox(db)) == queued
        assert len(await _events(db, Action.POLICY_LIMITED)) == 2


async def test_every_policy_notice_has_words_in_every_language(db: Database) -> None:
    """Each kind of notice the policy queues, rendered as the outbox would send it right
    after it was queued, for a recipient in each language: a sentence, no placeholder, and
    not English outside English."""
    from bot.context import Portal
    from bot.i18n import LANGUAGES
    from bot.outbox import Outgoing
    from bot.settings import load_settings
    from handlers.notices import renderer
    from storage import logins
    from storage.outbox import Message

    seen: dict[str, dict[str, str]] = {}
    portal = Portal(settings=load_settings(), db=db, sender=None)  # type: ignore[arg-type]
    render = renderer(portal)
    done = 0

    async def render_new() -> None:
        nonlocal done
        async with db.read() as conn:
            rows = await fetch_all(
                conn,
                "SELECT id, kind, ref_id, patient_id, chat_id, detail, keep, status, attempts,"
                " lapses_at FROM outbox WHERE id > ? ORDER BY id",
                (done,),
            )
        for row in rows:
            done = row["id"]
            data = dict(row)
            data["detail"] = json.loads(data["detail"]) if data["detail"] else {}
            message = Message.model_validate(data)
            words = seen.setdefault(f"{message.kind}:{message.detail}", {})
            for language in LANGUAGES:
                if message.patient_id is not None:
                    async with db.transaction() as conn:
                        login = await logins.for_patient(conn, message.patient_id)
                        if login is None:
                            break
                        await logins.set_locale(conn, login.telegram_user_id, language)
                out = await render(message)
                if not isinstance(out, Outgoing):
                    break  # nothing to say (any more), or nobody to say it to
                assert "{" not in out.text and "}" not in out.text, out.text
                words[language] = out.text
                if message.patient_id is None:
                    break  # a practitioner's chat: in the practice's language

    with policy.using(RULES), clock.use(FixedClock(at(2020, 1, 1))) as fixed:
        mum, dad, mia = await _family(db)
        for moment in (at(2027, 5, 11, 9), at(2027, 6, 10, 9), at(2029, 6, 10, 9)):
            fixed.set(moment)
            await sweep(db, RULES)
            await render_new()
        own = await invitations.create_own_login_invite(db, mum, mia, 14)
        assert own is not None
        await invitations.sign_in(db, own.invite.id, 702, "en", MIA_BORN)
        for moment in (at(2029, 6, 11), at(2033, 5, 12, 9)):
            fixed.set(moment)
            await sweep(db, RULES)
            await render_new()
        async with db.read() as conn:
            dads = await grants.active(conn, dad, mia)
        assert dads is not None
        await safeguarding.keep_after_adulthood(db, mia, dads.id)
        await render_new()
        fixed.set(at(2033, 6, 10, 9))
        await sweep(db, RULES)
        await render_new()
        await safeguarding.renew(db, mia, dads.id)
        await render_new()
        carer = await _signed_in(db, "Cat Ng", "cat@example.com", 703)
        _len, len_grant = await access.create_dependent(
            db,
            carer,
            "Len Ng",
            dt.date(1940, 1, 1),
            AccessRequest("Len Ng", Relationship.PARENT, None, Level.CLINICAL, Role.EDIT),
        )
        async with db.transaction() as conn:  # Len's access, as if from before the term
            await conn.execute("UPDATE grants SET ends_at = NULL WHERE id = ?", (len_grant.id,))
        await sweep(db, RULES)
        await render_new()
        async with db.read() as conn:
            ends = (await grants.get(conn, len_grant.id)).ends_at  # type: ignore[union-attr]
        assert ends is not None
        fixed.set(dt.datetime.fromtimestamp(ends - 7 * DAY, SYDNEY))
        await sweep(db, RULES)
        await render_new()
        assert (await safeguarding.suspend_by_practitioner(db, dads.id, DOCTOR)).outcome is (
            Outcome.DONE
        )
        await render_new()
    kinds = {key.split(":")[0] for key, words in seen.items() if words}
    assert kinds >= {
        "policy_ahead",
        "policy_done",
        "end_date_set",
        "renewal_asked",
        "renewed",
        "invite_asked",
        "holder_told",
        "young_review",
        "access_ended_quietly",
    }, sorted(kinds)
    for key, words in seen.items():
        if len(words) == len(LANGUAGES):  # a patient's: in their language
            assert len(set(words.values())) == len(LANGUAGES), (key, words)
