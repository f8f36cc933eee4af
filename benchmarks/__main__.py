"""`python -m benchmarks [--quick] [--json] [--users N] [--scale F] …`: see benchmarks/README.md."""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from benchmarks import fhir_import, load, postgresql, reminders, scale, startup, taps
from benchmarks.loopback import REPLY_TIMEOUT
from benchmarks.report import SECTIONS, Figure, Report, percentile
from benchmarks.seed import fresh
from storage.pgserver import unavailable


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Per-update cost, database at scale, memory and start-up, taps, FHIR "
        "import, reminders at scale: one markdown table (or JSON). Everything runs on "
        "127.0.0.1.",
    )
    p.add_argument("--quick", action="store_true", help="a smoke run of a few seconds")
    p.add_argument("--json", action="store_true", help="print JSON instead of the table")
    p.add_argument("--users", type=int, help="simulated users in section 1 (default 200)")
    p.add_argument(
        "--rate",
        type=float,
        help="updates/s offered while measuring latency (default 150: half the 300/s target)",
    )
    p.add_argument(
        "--scale",
        type=float,
        help="size of the practice in section 2 (default 1: 100,000 patients, 1M appointments)",
    )
    p.add_argument("--samples", type=int, help="timed calls per query in section 2 (500)")
    p.add_argument(
        "--startup-runs", type=int, help="timed restarts of `python -m bot run` after a first (3)"
    )
    p.add_argument(
        "--fhir-mb",
        type=float,
        help="size of the Synthea-shaped bundle section 5 imports, in MB (default 14; 1 quick)",
    )
    p.add_argument(
        "--day",
        type=int,
        help="appointments in section 6's practice day (default 10,000 × --scale, 60 at least)",
    )
    p.add_argument(
        "--only",
        action="append",
        choices=list(SECTIONS),
        help="run this section only (repeat for more; memory_startup runs section 1's load)",
    )
    p.add_argument("--workdir", type=Path, help="keep the databases here (default: a temp dir)")
    p.add_argument("--profile", type=Path, help="write cProfile stats of both bots here")
    p.add_argument(
        "--rtt-ms",
        type=float,
        default=0.0,
        help="hold each Bot API call this long in section 1, as a round trip to Telegram "
        "would (default 0: loopback)",
    )
    return p


def _log(message: str) -> None:
    print(f"[benchmarks] {message}", file=sys.stderr, flush=True)


async def _main(args: argparse.Namespace, workdir: Path) -> Report:
    quick = args.quick
    users = args.users or (6 if quick else 200)
    rate = args.rate or (60.0 if quick else 150.0)
    factor = args.scale if args.scale is not None else (0.002 if quick else 1.0)
    samples = args.samples or (20 if quick else 500)
    runs = args.startup_runs or (1 if quick else 3)
    fhir_mb = args.fhir_mb or (1.0 if quick else 14.0)
    report = Report(
        options={
            "quick": quick,
            "users": users,
            "rate": rate,
            "rtt_ms": args.rtt_ms,
            "scale": factor,
            "samples": samples,
            "startup_runs": runs,
            "fhir_mb": fhir_mb,
        }
    )

    day = args.day or max(60, round(reminders.DAY_APPOINTMENTS * factor))
    sizes = reminders.QUICK_SAMPLES if quick else reminders.SAMPLES
    report.options["day"] = day
    only = set(args.only or SECTIONS)
    # Why no PostgreSQL cluster can be started here (then section 7 is one row saying so).
    no_postgres = unavailable() if "postgresql" in only else None
    practice = {"database", "memory_startup", "reminders"}
    if no_postgres is None:
        practice.add("postgresql")  # section 7 copies it

    if only & practice:
        counts = scale.Counts().scaled(factor)
        big = fresh(workdir / "practice.db")
        _log(f"generating the practice ({counts})")
        generated = await asyncio.to_thread(scale.generate, big, counts)
        _log(f"generated in {generated.seconds:.1f} s, {generated.size_bytes / 1e6:.0f} MB")
    if "database" in only:
        _log("timing the hot queries on it")
        _database(report, generated, await scale.measure(big, samples))
    if "memory_startup" in only:
        _log("start-up of python -m bot run on that database")
        launches = await startup.time_to_first_poll(big, runs)
    if "reminders" in only:  # after the sections above: it adds a day to the practice
        _log(f"reminders: a day of {day:,} appointments queued, a sample of them sent")
        _reminders(report, await reminders.measure(big, day, sizes), sizes)
    if only & {"per_update", "memory_startup"}:
        _log(f"load: {users} users, portal bot then echo bot")
        options = load.LoadOptions(
            users=users, rate=rate, profile_dir=args.profile, rtt=args.rtt_ms / 1000
        )
        bots = await load.measure(workdir, options)
        if "per_update" in only:
            _per_update(report, bots, options)
        if "memory_startup" in only:
            _memory_startup(report, bots.portal, launches, generated)
    if "taps" in only:
        _log("taps")
        _taps(report, await taps.count(workdir))
    if "fhir_import" in only:
        _log(f"FHIR import: a {fhir_mb:g} MB Synthea-shaped bundle, 10 patients")
        imported = await asyncio.to_thread(
            fhir_import.measure, workdir, target_bytes=int(fhir_mb * 1_000_000)
        )
        _fhir_import(report, imported)
    if "postgresql" in only:  # last: it copies the practice as the sections above left it
        if no_postgres is not None:
            _log(f"PostgreSQL skipped: {no_postgres}")
            _postgresql_skipped(report, no_postgres)
        else:
            options = load.LoadOptions(users=users, rate=rate, rtt=args.rtt_ms / 1000)
            async with postgresql.started() as cluster:
                _log(f"PostgreSQL: the load of section 1 by webhook ({users} users)")
                loaded = await postgresql.measure_load(cluster, workdir, options)
                _log("PostgreSQL: section 2's practice copied in")
                copied = await postgresql.copy_practice(cluster, big)
                _log(f"PostgreSQL: copied in {copied.seconds:.0f} s; timing the hot queries")
                timed = await scale.measure(big, samples, postgres=cluster.url("practice"))
            _postgresql(report, loaded, options, copied, timed)
    return report


def _ms(seconds: float) -> float:
    return seconds * 1000


def _per_update(r: Report, bots: load.Measured, o: load.LoadOptions) -> None:
    s = "per_update"
    ours, echo, same = bots.portal, bots.echo, bots.echo_same_transport
    sat = ours.saturation
    mix = (
        f"{o.users} users, one update in flight each, one round of the mix per user and "
        "phase (19 updates: /appointments with ▶ ◀, /switch + tap, a child's upcoming ▶ and "
        "past, /switch back, one Approve tap, /addpatient's 8 steps to Confirm)"
    )
    r.add(
        Figure(
            s,
            "updates_per_s",
            "Throughput, portal bot",
            sat.rate,
            "updates/s",
            f"Saturation: each user sends its next update as soon as the reply arrives; "
            f"{sat.count} updates / wall time. {mix}. Bot in its own process, real HTTP to "
            "the loopback emulator, build_application(settings, rate_limit=False): PTB's "
            "AIORateLimiter models Telegram's ~30 msg/s server limit, not our cost"
            + (f"; every Bot API call held {o.rtt * 1000:g} ms (--rtt-ms)" if o.rtt else ""),
            ">=",
            300,
        )
    )
    reached = "from the update being available to getUpdates (enqueued in the emulator) to "
    reached += "the bot's reply (sendMessage/editMessageText) reaching that chat"
    for phase, rate, tag, what in (
        (ours.paced, o.rate, "", "the --rate"),
        (ours.light, ours.light_rate, "_half", "half the measured throughput"),
    ):
        for q in (50, 95, 99):
            target = 50.0 if q == 99 and not tag else None
            r.add(
                Figure(
                    s,
                    f"latency{tag}_p{q}_ms",
                    f"Latency p{q} at {rate:.0f} updates/s, portal bot",
                    _ms(percentile(phase.latencies, q)),
                    "ms",
                    f"{reached}; {phase.count} updates offered at {rate:.0f}/s ({what}; Poisson "
                    f"arrivals dealt to the users in turn; achieved {phase.rate:.0f}/s)",
                    "<" if target else None,
                    target,
                )
            )
    r.add(
        Figure(
            s,
            "echo_updates_per_s",
            "Throughput, bare PTB echo bot",
            echo.saturation.rate,
            "updates/s",
            "Same emulator, users and update stream; CommandHandler/MessageHandler reply, "
            "CallbackQueryHandler answer + edit; updates scheduled like ours (different users "
            "side by side, each user's one at a time: bot/processing.py)",
        )
    )
    for phase, rate, tag in ((echo.paced, o.rate, ""), (echo.light, echo.light_rate, "_half")):
        r.add(
            Figure(
                s,
                f"echo_latency{tag}_p99_ms",
                f"Latency p99 at {rate:.0f} updates/s, echo bot",
                _ms(percentile(phase.latencies, 99)),
                "ms",
                f"As for the portal bot, at the same offered load ({phase.count} updates)",
            )
        )
    cost, echo_cost = 1 / sat.rate, 1 / echo.saturation.rate
    r.add(
        Figure(
            s,
            "cost_ratio_wall",
            "Cost per update ÷ echo's (wall)",
            cost / echo_cost,
            "×",
            f"Wall time per update at saturation: {_ms(cost):.2f} ms ours, "
            f"{_ms(echo_cost):.2f} ms echo (on loopback the bot is CPU-bound, so this is "
            "its service time)",
            "<=",
            1.5,
        )
    )
    cpu = ours.cpu_saturation / max(sat.count, 1)
    echo_cpu = echo.cpu_saturation / max(echo.saturation.count, 1)
    r.add(
        Figure(
            s,
            "cost_ratio_cpu",
            "Cost per update ÷ echo's (CPU)",
            cpu / echo_cpu if echo_cpu else float("nan"),
            "×",
            f"CPU time of the bot's process (all threads, /proc/<pid>/stat) per update at "
            f"saturation: {_ms(cpu):.2f} ms ours, {_ms(echo_cpu):.2f} ms echo (PTB's default "
            "transport, httpx)",
            "<=",
            1.5,
        )
    )
    around = [run for run in (bots.echo_same_before, same) if run is not None]
    same_cpu = sum(run.cpu_saturation for run in around) / max(
        sum(run.saturation.count for run in around), 1
    )
    each = " and ".join(
        f"{_ms(run.cpu_saturation / max(run.saturation.count, 1)):.2f}" for run in around
    )
    r.add(
        Figure(
            s,
            "cost_ratio_cpu_same_transport",
            "Cost per update ÷ echo's on our transport (CPU)",
            cpu / same_cpu if same_cpu else float("nan"),
            "×",
            f"The echo bot again, sending through the portal bot's transport (PTB's "
            f"BaseRequest on aiohttp, bot/transport.py), saturation only, right before and "
            f"right after the portal bot's run ({each} ms): {_ms(same_cpu):.2f} ms "
            f"CPU per update, {same.saturation.rate:.0f} updates/s. What our handlers, "
            "database and larger messages cost over a bot that only echoes (issue #23's "
            "target); the ratio above compares against PTB as it comes",
            "<=",
            2.0,
        )
    )
    calls = ours.calls_saturation / max(sat.count, 1)
    echo_calls = echo.calls_saturation / max(echo.saturation.count, 1)
    r.add(
        Figure(
            s,
            "api_calls_per_update",
            "Bot API calls per update, portal bot",
            calls,
            "calls",
            f"Saturation phase, every call but getUpdates (answerCallbackQuery, edits, "
            f"messages, including those to other users): {echo_calls:.2f} for the echo bot",
        )
    )
    sent = ours.bytes_saturation / max(sat.count, 1)
    echo_sent = echo.bytes_saturation / max(echo.saturation.count, 1)
    r.add(
        Figure(
            s,
            "request_bytes_per_update",
            "Bytes sent to the Bot API per update, portal bot",
            sent,
            "bytes",
            f"Saturation phase, HTTP request bodies of those calls (text and keyboards; a "
            f"JSON document per call from ours, a form from PTB's default transport): "
            f"{echo_sent:.0f} for the echo bot. Each call's reply "
            "carries the message back, and PTB parses it: what a bot sends costs it twice",
        )
    )
    phases = (
        *(ours.saturation, ours.paced, ours.light),
        *(echo.saturation, echo.paced, echo.light),
        *(run.saturation for run in around),
    )
    r.add(
        Figure(
            s,
            "lost_updates",
            "Updates without a reply",
            sum(p.lost for p in phases),
            "",
            f"No reply within {REPLY_TIMEOUT:g} s, every bot and phase; Bot API calls the "
            f"emulator refused: {ours.emulator_errors} ours, "
            f"{echo.emulator_errors + sum(run.emulator_errors for run in around)} echo",
            "<=",
            0,
        )
    )
    rounds = o.users * load.ROUNDS
    r.add(
        Figure(
            s,
            "work_done",
            "Work done by the portal bot",
            ours.work.get("dependents_created", 0) + ours.work.get("requests_approved", 0),
            "rows",
            f"Dependents created + requests approved, read back from its database after the "
            f"run (expected {2 * rounds}: {rounds} of each): the figures above are for real work",
            ">=",
            2 * rounds,
        )
    )
    r.details["per_update"] = {
        "portal": _run_details(ours),
        "echo": _run_details(echo),
        "echo_portal_transport": _run_details(same),
    }


def _run_details(run: load.BotRun) -> dict[str, object]:
    out: dict[str, object] = {}
    for name, phase in (
        ("saturation", run.saturation),
        ("paced", run.paced),
        ("half_capacity", run.light),
    ):
        if not phase.count and not phase.lost:
            continue  # a phase this run did not have (saturation_only)
        out[name] = {
            "updates": phase.count,
            "lost": phase.lost,
            "updates_per_s": phase.rate,
            **{f"p{q}_ms": _ms(percentile(phase.latencies, q)) for q in (50, 95, 99)},
        }
    out["cpu_ms_per_update_at_saturation"] = _ms(run.cpu_saturation / max(run.saturation.count, 1))
    out["half_capacity_rate"] = run.light_rate
    out["memory_kib"] = run.memory
    out["work"] = run.work
    out["emulator_errors"] = run.emulator_errors
    if run.stderr.strip():
        out["stderr_tail"] = run.stderr[-2000:]
    return out


def _query_figures(
    r: Report,
    section: str,
    m: scale.ScaleResult,
    key_prefix: str,
    label_suffix: str,
    how: Callable[[scale.OpTiming], str],
) -> None:
    """Each hot query's p50, and its p99 against the 5 ms target (sections 2 and 7)."""
    for t in m.timings:
        for q, target in ((50, None), (99, 5.0)):
            r.add(
                Figure(
                    section,
                    f"{key_prefix}{t.key}_p{q}_ms",
                    f"{t.label} p{q}{label_suffix}",
                    _ms(percentile(t.samples, q)),
                    "ms",
                    how(t),
                    "<" if target else None,
                    target,
                )
            )


def _database(r: Report, generated: scale.Generated, m: scale.ScaleResult) -> None:
    s = "database"
    rows = generated.rows
    r.add(
        Figure(
            s,
            "generated_rows",
            "Practice generated",
            sum(rows.values()),
            "rows",
            ", ".join(f"{v:,} {k}" for k, v in rows.items())
            + f"; plain sqlite3 executemany in one transaction, synchronous=OFF, "
            f"{generated.seconds:.0f} s, {generated.size_bytes / 1e6:.0f} MB",
        )
    )
    _query_figures(
        r, s, m, "", "", lambda t: f"{t.how}; {len(t.samples)} calls through the app's Database"
    )
    plans = "; ".join(f"`{sql}`: {' / '.join(plan)}" for sql, plan in m.plans.items())
    r.add(
        Figure(
            s,
            "scanning_statements",
            "Statements that scan a table",
            len(m.plans),
            "",
            f"EXPLAIN QUERY PLAN of every distinct statement the timed calls ran "
            f"({m.statements}); a SCAN reads a whole table or index"
            + (f". Scans: {plans}" if plans else ""),
            "<=",
            0,
        )
    )
    r.details["database"] = {
        "rows": rows,
        "generation_seconds": generated.seconds,
        "size_bytes": generated.size_bytes,
        "distinct_statements": m.statements,
        "scans": m.plans,
    }


def _memory_startup(
    r: Report, ours: load.BotRun, launches: startup.Launches, generated: scale.Generated
) -> None:
    s = "memory_startup"
    times = ", ".join(f"{x:.2f}" for x in launches.later)
    r.add(
        Figure(
            s,
            "rss_mb",
            "RSS after the load run",
            ours.memory.get("VmRSS", 0) / 1024,
            "MB",
            f"VmRSS of the portal bot's process after section 1 (/proc/<pid>/status); "
            f"peak VmHWM {ours.memory.get('VmHWM', 0) / 1024:.0f} MB",
            "<",
            150,
        )
    )
    r.add(
        Figure(
            s,
            "startup_s",
            "Start-up to first getUpdates",
            statistics.median(launches.later),
            "s",
            f"`python -m bot run` as a subprocess (PORTAL_API_BASE_URL = the loopback "
            f"emulator, PORTAL_DB_PATH = section 2's {generated.size_bytes / 1e6:.0f} MB "
            f"database), launch to the emulator seeing getUpdates; median of "
            f"{len(launches.later)} restart{'s' if len(launches.later) != 1 else ''} ({times}"
            f" s) after a first launch ({launches.first:.2f} s) that wrote the bot's bytecode "
            "if it was not cached yet",
            "<",
            1,
        )
    )


def _taps(r: Report, journeys: list[taps.Journey]) -> None:
    targets = {"link_dependent": 8, "approve": 1, "switch_view": 2}
    for j in journeys:
        how = (
            f"{j.taps} tap(s) + {j.typed} typed message(s), counting the command that starts "
            "the journey; SimUser through the real bot, tapping the buttons its replies offer"
        )
        if j.error:
            how += f"; did not finish: {j.error}"
        elif not j.reached:
            how += "; the goal was not reached"
        r.add(
            Figure(
                "taps",
                j.key,
                j.label,
                float(j.total) if j.reached else float("nan"),
                "actions",
                how,
                "<=",
                targets[j.key],
            )
        )
    r.details["taps"] = {
        j.key: {"taps": j.taps, "typed": j.typed, "reached": j.reached, "error": j.error}
        for j in journeys
    }


def _fhir_import(r: Report, m: fhir_import.Measured) -> None:
    s = "fhir_import"
    bundle = (
        f"a {m.size_bytes / 1e6:.1f} MB Synthea-shaped transaction bundle, {m.patients} patients "
        f"(benchmarks/synthea.py, seed {fhir_import.SEED})"
    )
    how = (
        f"`python -m bot import-fhir` as a subprocess on a fresh database, {bundle}; launch "
        f"to exit, interpreter start and migrations included. Printed: {m.first.summary}"
    )
    r.add(
        Figure(
            s,
            "import_s",
            "Import of a Synthea-shaped bundle",
            m.first.seconds,
            "s",
            how,
            "<",
            fhir_import.TARGET_SECONDS,
        )
    )
    r.add(
        Figure(
            s,
            "import_peak_mb",
            "Peak RSS of that import",
            m.first.peak_mb,
            "MB",
            "VmHWM of the import's process as it exits (/proc/self/status; wait4's ru_maxrss"
            " would add the benchmark's own memory, carried over through fork and exec)",
            "<",
            fhir_import.TARGET_MB,
        )
    )
    r.add(
        Figure(
            s,
            "reimport_s",
            "The same bundle imported again",
            m.again.seconds,
            "s",
            f"Into the database the first run filled; every row already there. Peak RSS "
            f"{m.again.peak_mb:.0f} MB. Printed: {m.again.summary}",
        )
    )
    r.details["fhir_import"] = {
        "size_bytes": m.size_bytes,
        "patients": m.patients,
        "first": {
            "seconds": m.first.seconds,
            "peak_mb": m.first.peak_mb,
            "summary": m.first.summary,
        },
        "again": {
            "seconds": m.again.seconds,
            "peak_mb": m.again.peak_mb,
            "summary": m.again.summary,
        },
    }


def _reminders(r: Report, m: reminders.Measured, sizes: tuple[int, int, int]) -> None:
    s = "reminders"
    day, first, second, d = m.day, m.first, m.second, m.drained
    r.add(
        Figure(
            s,
            "day_appointments",
            "Appointments in the practice day",
            day.appointments,
            "appointments",
            f"Booked or confirmed, starting in the 24 hours after the sweep's moment, on section "
            f"2's practice: {day.already_there:,} of its own, the rest added for patients drawn "
            f"at random ({day.patients:,} patients in all); {day.grants_added:,} active grants "
            "added from signed-in adults, so that 1-4 people (2.5 on average) may be reminded "
            f"of each patient's appointments: {day.expected:,} reminders due, counted in SQL",
        )
    )
    r.add(
        Figure(
            s,
            "reminders_queued",
            "Reminders queued",
            first.rows,
            "reminders",
            f"bot.reminders.queue_due_reminders(db, settings, at) as the sweep calls it "
            f"(PORTAL_REMINDERS 24h,2h), through the app's Database: {first.report.line()}; "
            "outbox rows read back, against the reminders due",
            ">=",
            day.expected,
        )
    )
    n, db = len(first.spent), first.db
    (selects, selected), (inserts, inserted) = first.part("SELECT"), first.part("INSERT")
    _, committed = first.part("COMMIT")
    r.add(
        Figure(
            s,
            "queue_db_s",
            "Queueing them: database time",
            db,
            "s",
            f"Time inside SQLite of the {n:,} statements the call ran (each sqlite3 call on "
            f"the app's writer timed): {selects} SELECTs (each window's candidates, the last "
            f"day's drops) {selected:.2f} s; the outbox rows, {inserts:,} INSERTs "
            f"{inserted:.2f} s; COMMIT {committed:.2f} s. One "
            "transaction, WAL, synchronous=NORMAL, as in the app",
            "<",
            5,
        )
    )
    r.add(
        Figure(
            s,
            "queue_wall_s",
            "Queueing them: wall time",
            first.wall,
            "s",
            f"The same call from start to end: its database time and the Python around it "
            f"(access rules, one event per appointment, one outbox row per person: "
            f"{first.wall - db:.2f} s). The issue's target is the database time; the wall "
            "time is held to it too",
            "<",
            5,
        )
    )
    r.add(
        Figure(
            s,
            "requeue_db_ms",
            "The same sweep again: database time",
            _ms(second.db),
            "ms",
            f"queue_due_reminders at the same moment once more, every reminder in the outbox "
            f"already ({len(second.spent)} statements): {second.report.line()}; wall time "
            f"{second.wall:.3f} s",
        )
    )
    r.add(
        Figure(
            s,
            "queued_twice",
            "Reminders queued twice",
            (second.rows - first.rows) + m.twice,
            "",
            f"Outbox rows the second sweep added ({second.rows - first.rows}), plus reminders of "
            f"one appointment, start, offset and person queued more than once ({m.twice})",
            "<=",
            0,
        )
    )
    plans = "; ".join(f"`{sql}`: {' / '.join(plan)}" for sql, plan in m.plans.items())
    r.add(
        Figure(
            s,
            "queue_scans",
            "Statements that scan a table (queueing)",
            len(m.plans),
            "",
            "EXPLAIN QUERY PLAN of every distinct statement both sweeps ran, with their "
            "parameters" + (f". Scans: {plans}" if plans else ""),
            "<=",
            0,
        )
    )
    free, paced, rtt = d.unpaced, d.paced, d.paced_rtt
    total, backlog = len(d.backlog.rows), d.backlog
    bot = (
        f"The bot (build_application, its own process, benchmarks/botproc.py) sending from "
        f"its outbox to the loopback emulator, as after a sweep; the practice's time zone set "
        f"to {d.timezone}, where it is midday (quiet hours would hold them at night)"
    )
    r.add(
        Figure(
            s,
            "cpu_ms_per_reminder",
            "CPU per reminder sent",
            _ms(free.cpu_per_message),
            "ms",
            f"{bot}. A sample of the backlog, its first {free.released:,} rows (not all "
            f"{total:,}), without PTB's rate limiter; CPU time of the bot's process (/proc) from "
            f"their release to the last one marked sent, / {free.messages:,} messages that "
            f"arrived ({_outcome(free)}). Each: claim the row, word it (access, appointment, "
            f"quiet hours read again), sendMessage, mark it sent. With the limiter: "
            f"{_ms(paced.cpu_per_message):.2f} ms; with it and a {reminders.RTT_S * 1000:g} ms "
            f"round trip: {_ms(rtt.cpu_per_message):.2f} ms",
        )
    )
    share = reminders.TELEGRAM_RATE * free.cpu_per_message * 100
    r.add(
        Figure(
            s,
            "cpu_share_at_30",
            "CPU to send 30 reminders/s",
            share,
            "% of a core",
            f"30 × the CPU per reminder above: what Telegram's pace costs the bot; under 100% "
            f"the CPU keeps up (with the rate limiter's figure: "
            f"{reminders.TELEGRAM_RATE * paced.cpu_per_message * 100:.0f}%)",
            "<",
            100,
        )
    )
    r.add(
        Figure(
            s,
            "send_rate_unpaced",
            "Outbox sender's rate without a rate limiter",
            free.rate,
            "reminders/s",
            f"That sample, first to last message: the sender sends its rows one at a time, so "
            f"on loopback this is its service time ({_ms(1 / free.rate):.1f} ms a reminder)",
        )
    )
    r.add(
        Figure(
            s,
            "send_rate_paced",
            "Sending rate as `bot run` sends",
            round(paced.steady_rate, 1),  # to 0.1/s: the arrivals' clock jitters by a ms
            "reminders/s",
            f"The next {paced.released} rows, the bot built as `bot run` builds it (the "
            f"outbox's sender keeps Telegram's pace itself, 30/s for the bot and 1/s a chat; "
            f"PTB's limiter only waits out a 429); over the second half of them "
            f"({_outcome(paced)}), first to last {paced.rate:.0f}/s",
            "<=",
            reminders.TELEGRAM_RATE,
        )
    )
    r.add(
        Figure(
            s,
            "most_in_one_second",
            "Most reminders sent in one second",
            paced.most_in_a_second(),
            "reminders",
            "Any 1-second window of that phase: the limiter (aiolimiter's leaky bucket, 30 "
            "deep) lets a burst through at the start before it paces",
            "<=",
            reminders.TELEGRAM_RATE,
        )
    )
    r.add(
        Figure(
            s,
            "same_chat_under_1s",
            "Reminders to one chat < 1 s apart",
            backlog.same_chat_within_1s,
            "",
            f"Telegram allows about one message a second to one chat, and neither the sender "
            f"nor PTB's limiter spaces messages to one private chat: in the whole backlog, in "
            f"the sender's order ({total:,} reminders to {backlog.chats:,} chats, at most "
            f"{backlog.most_to_one_chat} to one), the reminders that would follow one to the "
            f"same chat within 1 s at 30/s. Seen in the limited phase above: "
            f"{paced.same_chat_within(reminders.PER_CHAT_S)} of {paced.messages}",
            "<=",
            0,
        )
    )
    r.add(
        Figure(
            s,
            "send_rate_rtt",
            f"Sending rate at a {reminders.RTT_S * 1000:g} ms round trip",
            rtt.rate,
            "reminders/s",
            f"The next {rtt.released} rows, with the limiter, every Bot API call held "
            f"{reminders.RTT_S * 1000:g} ms by the emulator as Telegram's round trip would "
            f"({_outcome(rtt)}): one row at a time, the sender waits for each answer, so it "
            f"sends at most 1 / (round trip + its own time) a second",
        )
    )
    at_30 = total / reminders.TELEGRAM_RATE
    r.add(
        Figure(
            s,
            "drain_min_at_30",
            "The day's backlog drained at 30/s",
            at_30 / 60,
            "min",
            f"{total:,} reminders at Telegram's 30 messages/s, if the sender kept that pace "
            f"(at {share:.0f}% of a core it can, on loopback: {free.rate:.0f}/s); one chat's "
            f"{backlog.most_to_one_chat} at 1/s would take no longer",
        )
    )
    slowest = min(reminders.TELEGRAM_RATE, rtt.rate)
    r.add(
        Figure(
            s,
            "drain_min_rtt",
            f"The day's backlog drained at a {reminders.RTT_S * 1000:g} ms round trip",
            total / slowest / 60,
            "min",
            f"{total:,} reminders at the rate just measured ({slowest:.1f}/s)",
        )
    )
    r.details["reminders"] = {
        "day": {
            "at": day.at,
            "appointments": day.appointments,
            "already_there": day.already_there,
            "patients": day.patients,
            "grants_added": day.grants_added,
            "reminders_due": day.expected,
            "seconds": day.seconds,
        },
        "queue": [
            {
                "line": q.report.line(),
                "queued": q.report.queued,
                "wall_s": q.wall,
                "db_s": q.db,
                "statements": len(q.spent),
                "outbox_rows_after": q.rows,
            }
            for q in (first, second)
        ],
        "scans": m.plans,
        "samples": list(sizes),
        "backlog": {
            "reminders": total,
            "chats": backlog.chats,
            "most_to_one_chat": backlog.most_to_one_chat,
            "same_chat_within_1s_at_30": backlog.same_chat_within_1s,
        },
        "timezone": d.timezone,
        **{
            p.name: {
                "released": p.released,
                "messages": p.messages,
                "outcome": p.outcome,
                "cpu_ms_per_message": _ms(p.cpu_per_message),
                "rate": p.rate,
                "steady_rate": p.steady_rate,
                "most_in_one_second": p.most_in_a_second(),
                "same_chat_under_1s": p.same_chat_within(reminders.PER_CHAT_S),
                "rtt_ms": _ms(p.rtt),
                "rate_limited": p.rate_limited,
            }
            for p in (free, paced, rtt)
        },
    }
    if d.stderr:
        r.details["reminders"]["stderr_tail"] = d.stderr[-2000:]


def _postgresql_skipped(r: Report, why: str) -> None:
    r.add(Figure("postgresql", "skipped", "Section skipped", math.nan, "", why))
    r.details["postgresql"] = {"skipped": why}


def _postgresql(
    r: Report,
    loaded: postgresql.Load,
    o: load.LoadOptions,
    copied: postgresql.Copied,
    m: scale.ScaleResult,
) -> None:
    s = "postgresql"
    runs = loaded.runs
    names = {"sqlite_1": "SQLite, 1 process"}
    names |= {f"pg_{n}": f"PostgreSQL, {n} worker{'s' * (n > 1)}" for n in postgresql.WORKERS}
    path = (
        "`python -m bot run --webhook-url … --workers N`'s own serving code "
        "(bot/webhook.py: one aiohttp process for 1, gunicorn's aiohttp workers for more) "
        "built without PTB's AIORateLimiter as in section 1 (benchmarks/webhookproc.py); "
        "the emulator POSTs each update to the webhook as Telegram does (per-queue order, "
        "40 connections at most); a fresh copy of one seeded database per configuration"
    )
    mix = f"section 1's load: {o.users} users, one round of its 19-update mix per phase"
    for key, run in runs.items():
        sat = run.saturation
        bot_cpu = run.cpu_saturation / max(sat.count, 1)
        server_cpu = run.side_cpu_saturation / max(sat.count, 1)
        r.add(
            Figure(
                s,
                f"{key}_updates_per_s",
                f"Throughput, {names[key]}",
                sat.rate,
                "updates/s",
                f"Saturation ({mix}, each user's next update as soon as the reply came): "
                f"{sat.count} updates / wall time. {path}",
            )
        )
        how = (
            "CPU time of the bot's process tree (gunicorn's master and workers, "
            "/proc/<pid>/stat utime+stime, exited children's included) over the saturation "
            "phase / its updates"
        )
        if key != "sqlite_1":
            how += (
                f"; the PostgreSQL server's own (postmaster, backends and helpers, the same "
                f"way): {_ms(server_cpu):.2f} ms, so {_ms(bot_cpu + server_cpu):.2f} ms "
                "per update together"
            )
        r.add(Figure(s, f"{key}_cpu_ms", f"CPU per update, {names[key]}", _ms(bot_cpu), "ms", how))
        if key != "sqlite_1":
            r.add(
                Figure(
                    s,
                    f"{key}_server_cpu_ms",
                    f"PostgreSQL's CPU per update, {names[key]}",
                    _ms(server_cpu),
                    "ms",
                    "The server's processes over the same phase / its updates (fsync off, "
                    "Unix socket: storage/pgserver.py)",
                )
            )
        for q in (50, 99):
            target = 50.0 if q == 99 and key == "pg_4" else None
            r.add(
                Figure(
                    s,
                    f"{key}_latency_p{q}_ms",
                    f"Latency p{q} at {o.rate:.0f} updates/s, {names[key]}",
                    _ms(percentile(run.paced.latencies, q)),
                    "ms",
                    f"From the update enqueued in the emulator (then POSTed to the webhook) "
                    f"to the reply reaching the chat; {run.paced.count} updates offered at "
                    f"{o.rate:.0f}/s, Poisson (achieved {run.paced.rate:.0f}/s)",
                    "<" if target else None,
                    target,
                )
            )
    sqlite, one = runs["sqlite_1"], runs["pg_1"]
    r.add(
        Figure(
            s,
            "pg_1_vs_sqlite",
            "One PostgreSQL worker ÷ SQLite's process (throughput)",
            one.saturation.rate / sqlite.saturation.rate,
            "×",
            f"{one.saturation.rate:.0f} ÷ {sqlite.saturation.rate:.0f} updates/s, both through "
            "the webhook on this machine, in this run",
            ">=",
            0.6,
        )
    )
    echo = loaded.echo
    if echo is not None:
        echo_cpu = echo.cpu_saturation / max(echo.saturation.count, 1)
        bot_cpu = one.cpu_saturation / max(one.saturation.count, 1)
        both = bot_cpu + one.side_cpu_saturation / max(one.saturation.count, 1)
        r.add(
            Figure(
                s,
                "pg_1_cost_ratio_cpu",
                "One PostgreSQL worker's CPU per update ÷ echo's",
                bot_cpu / echo_cpu if echo_cpu else math.nan,
                "×",
                f"Issue #23's figure for one PostgreSQL worker (no target): "
                f"{_ms(bot_cpu):.2f} ms ÷ {_ms(echo_cpu):.2f} ms, the echo bot on our "
                f"transport (section 1's, polling: there is no webhook echo bot, so the "
                f"transports differ), saturation, in this run. With the server's CPU: "
                f"{both / echo_cpu:.2f}×",
            )
        )
    lost = sum(run.saturation.lost + run.paced.lost for run in runs.values())
    errors = sum(run.emulator_errors for run in runs.values())
    r.add(
        Figure(
            s,
            "lost_updates",
            "Updates without a reply",
            lost,
            "",
            f"Every configuration and phase; Bot API calls the emulator refused: {errors}",
            "<=",
            0,
        )
    )
    expected = 2 * o.users * 2  # two phases: a dependent and an approval per user each
    done = min(
        run.work.get("dependents_created", 0) + run.work.get("requests_approved", 0)
        for run in runs.values()
    )
    r.add(
        Figure(
            s,
            "work_done",
            "Work done, the least of the configurations",
            done,
            "rows",
            f"Dependents created + requests approved, read back from each database (expected "
            f"{expected}: two phases of {o.users} users)",
            ">=",
            expected,
        )
    )
    rows = copied.rows
    r.add(
        Figure(
            s,
            "copied_rows",
            "Section 2's practice in PostgreSQL",
            sum(rows.values()),
            "rows",
            ", ".join(f"{v:,} {k}" for k, v in rows.items())
            + f"; COPY from the SQLite file (ids kept, foreign-key triggers off while loading), "
            f"then ANALYZE: {copied.seconds:.0f} s with the migrations",
        )
    )
    _query_figures(
        r,
        s,
        m,
        "db_",
        " (PostgreSQL)",
        lambda t: (
            f"As in section 2 ({t.how}), {len(t.samples)} calls through the app's "
            "PostgreSQL Database (asyncpg pool)"
        ),
    )
    plans = "; ".join(f"`{sql}`: {' / '.join(plan)}" for sql, plan in m.plans.items())
    r.add(
        Figure(
            s,
            "scanning_statements",
            "Statements with a sequential scan (PostgreSQL)",
            len(m.plans),
            "",
            f"EXPLAIN, with the parameters it ran with, of every distinct statement the timed "
            f"calls ran ({m.statements}): a `Seq Scan on` a table of more than "
            f"{postgresql.SMALL_TABLE:,} rows (planner's estimate)"
            + (f". Scans: {plans}" if plans else ""),
            "<=",
            0,
        )
    )
    r.details["postgresql"] = {
        "runs": {key: _run_details(run) for key, run in runs.items()},
        "server_cpu_ms_per_update": {
            key: _ms(run.side_cpu_saturation / max(run.saturation.count, 1))
            for key, run in runs.items()
            if key != "sqlite_1"
        },
        "echo_portal_transport": _run_details(echo) if echo else None,
        "copied_rows": rows,
        "scans": m.plans,
    }


def _outcome(phase: reminders.Phase) -> str:
    return ", ".join(f"{n:,} {status}" for status, n in sorted(phase.outcome.items()))


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    started = time.perf_counter()
    load_before = round(os.getloadavg()[0], 2)
    _log(f"1-minute load average before: {load_before} (other work on the machine skews figures)")
    if args.workdir:
        args.workdir.mkdir(parents=True, exist_ok=True)
        workdir = args.workdir
    else:
        workdir = Path(tempfile.mkdtemp(prefix="portal-bench-"))
    if args.profile:
        args.profile.mkdir(parents=True, exist_ok=True)
    try:
        report = asyncio.run(_main(args, workdir))
    finally:
        if not args.workdir:
            shutil.rmtree(workdir, ignore_errors=True)
    report.options["seconds"] = round(time.perf_counter() - started, 1)
    report.options["load_average_before"] = load_before
    print(report.json_text() if args.json else report.markdown())
    return 0


if __name__ == "__main__":
    sys.exit(main())
