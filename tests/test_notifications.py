"""/notifications end to end: reminders, invoices and results on or off per person, quiet
hours on or off and when, every button edited in place, in each language; and the sweep
and the sender honour the choices."""

from __future__ import annotations

import pytest

from bot.callbacks import ChooseNotificationsFor, ToggleTopic
from bot.context import portal
from storage import Database, logins
from storage.clock import FixedClock
from storage.notifications import Topic
from tests.botapi import BotAPIServer
from tests.test_reminders import (
    HOUR,
    App,
    appointment,
    at,
    family,
    fixed,  # noqa: F401  (the fixture)
    reminders_of,
    settled,
    sweep,
    until,
)

ON, OFF = "🌙 Quiet hours: on", "🌙 Quiet hours: off"


async def test_muting_one_childs_reminders_keeps_the_others(
    fixed: FixedClock,  # noqa: F811
    app: App,
    server: BotAPIServer,
    bot_db: Database,
) -> None:
    f = await family(bot_db, server)
    ann = f.ann
    [menu] = await ann.send("/notifications")
    assert "Notifications" in menu.text and "Quiet hours 21:00–08:00" in menu.text
    assert menu.labels == [
        "Me (Ann Lee)",
        "Mia Lee",
        "Noah Lee",
        ON,
        "Starts 21:00",
        "Ends 08:00",
    ]
    await ann.tap("Noah Lee", message=menu)
    assert "Notifications about Noah Lee" in menu.text
    # Administrative access: no results to tell of.
    assert menu.labels == ["✅ Appointment reminders", "✅ New invoices", "◀ Back"]
    await ann.tap("✅ Appointment reminders", message=menu)
    assert menu.labels[0] == "🔕 Appointment reminders"
    await ann.tap("◀ Back", message=menu)
    await ann.tap("Mia Lee", message=menu)
    assert menu.labels == [
        "✅ Appointment reminders",
        "✅ New invoices",
        "✅ New results",
        "◀ Back",
    ]
    assert [m for m in ann.bot_messages if "Notifications" in m.text] == [menu]  # in place

    report = await sweep(app, fixed, at(3, 15))
    assert report.queued[24 * HOUR] == 1
    await ann.wait_for("Reminder: Mia Lee")
    await until(settled(bot_db))
    await server.wait_idle()
    assert not reminders_of(ann, "Noah Lee")


async def test_muted_after_it_was_queued_it_is_not_sent(
    fixed: FixedClock,  # noqa: F811
    app: App,
    server: BotAPIServer,
    bot_db: Database,
) -> None:
    f = await family(bot_db, server)
    queued = await sweep(app, fixed, at(3, 22, 45))  # quiet hours: they wait for 08:00
    assert queued.queued[24 * HOUR] == 2
    [menu] = await f.ann.send("/notifications")
    await f.ann.tap("Mia Lee", message=menu)
    await f.ann.tap("✅ Appointment reminders", message=menu)
    fixed.set(at(4, 8))
    portal(app).sender.wake()
    await f.ann.wait_for("Reminder: Noah Lee")
    await until(settled(bot_db))
    await server.wait_idle()
    assert not reminders_of(f.ann, "Mia Lee")


async def test_quiet_hours_off_sends_at_night_and_times_can_change(
    fixed: FixedClock,  # noqa: F811
    app: App,
    server: BotAPIServer,
    bot_db: Database,
) -> None:
    f = await family(bot_db, server)
    await appointment(bot_db, f.mia, at(4, 22, 30))
    [menu] = await f.ann.send("/notifications")
    await f.ann.tap("Starts 21:00", message=menu)
    await f.ann.tap("Ends 08:00", message=menu)
    assert "Quiet hours 22:00–09:00" in menu.text
    assert menu.labels[-2:] == ["Starts 22:00", "Ends 09:00"]
    await f.ann.tap(ON, message=menu)
    assert menu.labels[-1] == OFF and "Quiet hours are off" in menu.text

    await sweep(app, fixed, at(3, 23, 30))
    await f.ann.wait_for("Reminder: Mia Lee has an appointment on Tue 4 Jun 2030 · 10:30")


async def test_a_forged_person_is_refused_and_nothing_is_stored(
    fixed: FixedClock,  # noqa: F811
    app: App,
    server: BotAPIServer,
    bot_db: Database,
) -> None:
    f = await family(bot_db, server)
    [menu] = await f.ann.send("/notifications")
    stranger = f.noah + 100
    await f.ann.tap_data(ChooseNotificationsFor(stranger).encode(), message=menu)
    await f.ann.tap_data(ToggleTopic(stranger, Topic.REMINDERS).encode(), message=menu)
    assert f.ann.alerts[-2:] == [("You don't have access to that portal.", True)] * 2
    async with bot_db.read() as conn:
        rows = await conn.execute_fetchall("SELECT count(*) FROM notification_mutes")
    assert next(iter(rows))[0] == 0


@pytest.mark.parametrize(
    ("language", "title", "toggle"),
    [
        ("en", "Notifications", "Quiet hours: on"),
        ("zh_Hans", "通知", "免打扰时段：开"),
        ("vi", "Thông báo", "Giờ yên lặng: bật"),
        ("ar", "الإشعارات", "ساعات الهدوء: مفعّلة"),
    ],
)
async def test_notifications_speak_each_language(
    server: BotAPIServer, bot_db: Database, language: str, title: str, toggle: str
) -> None:
    f = await family(bot_db, server)
    async with bot_db.transaction() as conn:
        await logins.set_locale(conn, 700, language)
    [menu] = await f.ann.send("/notifications")
    assert title in menu.text and any(toggle in label for label in menu.labels)
    [help_text] = await f.ann.send("/help")
    assert "/notifications" in help_text.text
