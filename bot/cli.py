"""`python -m bot …`: run the bot and the practice's admin tasks."""

from __future__ import annotations

import argparse
import asyncio
import csv
import datetime as dt
import logging
import re
import sys
import textwrap
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from bot import invitations, policy
from bot.settings import Settings, SettingsError, load_settings
from bot.text import clean_email, clean_name
from bot.tokens import deep_link
from storage import Database, StorageError, clock, open_database, patients, practitioners, state
from storage.models import Patient

if TYPE_CHECKING:
    from bot import safeguarding as safeguarding_types
    from bot.fhir import Skipped


class UsageError(Exception):
    """A problem with what was asked on the command line: one line, exit code 2."""


class DataError(Exception):
    """A problem with the input data (e.g. a CSV row): one line, exit code 1."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bot",
        description="portal-bot: the patient portal of a medical practice, in Telegram. "
        "Settings come from PORTAL_* environment variables (see README).",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser(
        "run",
        help="run the bot (long polling, or a webhook); migrates the database first",
        description="Run the bot. Needs PORTAL_BOT_TOKEN. Long polling by default; with "
        "--webhook-url, Telegram posts updates to that HTTPS URL (terminate TLS in front of "
        "the bot) and every request must carry the secret token (PORTAL_WEBHOOK_SECRET, or "
        "a random one drawn once per deployment). --workers N runs N worker processes on "
        "one port; it needs the webhook and PostgreSQL (PORTAL_DATABASE_URL). See "
        "docs/deploy.md.",
    )
    run.add_argument("--webhook-url", metavar="URL", help="public HTTPS URL of the webhook")
    run.add_argument("--listen", default="127.0.0.1", help="address to listen on")
    run.add_argument("--port", type=int, default=8443, help="port to listen on (default 8443)")
    run.add_argument(
        "--workers", type=int, default=1, help="worker processes for the webhook (default 1)"
    )
    sub.add_parser(
        "migrate",
        help="create or upgrade the database schema",
        description="Apply pending schema migrations to PORTAL_DB_PATH. Safe to run twice.",
    )

    add = sub.add_parser(
        "add-practitioner",
        help="allow a Telegram user to send invites",
        description="Register a practitioner: they can then use /invite in the bot.",
    )
    add.add_argument(
        "--telegram-id", type=int, required=True, help="their numeric Telegram user id"
    )
    add.add_argument("--name", required=True, help="their name, as patients know it")

    inv = sub.add_parser(
        "invite",
        help="create invite links for patients",
        description="Create single-use invite links and print them, one per line. Either one "
        "patient (--name and --dob) or a CSV file with columns name,dob[,email]. Every link "
        "asks the patient's date of birth: it may be left out only for an --email whose "
        "patient has one on record, and one that differs from the record is refused.",
    )
    one = inv.add_argument_group("one patient")
    one.add_argument("--name", help="the patient's full name")
    one.add_argument("--dob", help="date of birth, YYYY-MM-DD; asked when they open the link")
    one.add_argument("--email", help="their email (optional); an existing patient is reused")
    inv.add_argument("--csv", type=Path, metavar="FILE", help="a CSV file: name,dob[,email]")
    inv.add_argument(
        "--bot-username",
        help="the bot's @username for the link (default: asked from Telegram with the token)",
    )

    unlink = sub.add_parser(
        "unlink",
        help="sign a patient's Telegram account out of the portal",
        description="Remove the Telegram login of one patient, for a lost phone or a "
        "taken-over account. Their records, access and dependents stay; their unused invite "
        "links stop working, and they sign in again with a new one (see invite). With "
        "PORTAL_BOT_TOKEN set, they are told in Telegram.",
    )
    unlink.add_argument(
        "--patient", required=True, metavar="ID_OR_EMAIL", help="the patient's id or email"
    )

    play = sub.add_parser(
        "playground",
        help="try the bot in your browser: three phones, no Telegram, no token",
        description="Start the bot against a local Telegram emulator with the demo practice "
        "and open a page with three phones (practitioner, parent, partner) on 127.0.0.1.",
    )
    play.add_argument("--port", type=int, default=8080, help="the page's port (default 8080)")
    play.add_argument(
        "--db", type=Path, metavar="PATH", help="keep the database here (default: a temp file)"
    )
    play.add_argument(
        "--bot-elsewhere",
        action="store_true",
        help="only the emulator, the page and the demo data: the bot runs on its own against "
        "this emulator, e.g. a deployment's workers behind their webhook (docs/deploy.md)",
    )

    fhir = sub.add_parser(
        "import-fhir",
        help="import patients, appointments, invoices and records from a FHIR R4 Bundle",
        description="Import a FHIR R4 Bundle (JSON): Patient, Appointment, Invoice, Condition, "
        "Immunization, Observation and AllergyIntolerance; other resource types are left out. "
        "An entry that cannot be imported is skipped and listed (entries count from 0, as in "
        "Bundle.entry[0]); the rest is imported. Importing the same bundle again updates what "
        "it imported before, and says what was new and what was updated.",
    )
    fhir.add_argument("file", type=Path, metavar="FILE", help="the Bundle, as a JSON file")
    fhir.add_argument(
        "--strict",
        action="store_true",
        help="all or nothing: stop at the first entry that cannot be imported, write nothing",
    )

    remind = sub.add_parser(
        "remind",
        help="queue the appointment reminders that are due (the sweep does this too)",
        description="Queue every appointment reminder due now (PORTAL_REMINDERS, default "
        "24h,2h before) that is not queued yet: to the patient and everyone whose access "
        "includes their appointments. The running bot sends them, each once, waiting for the "
        "end of each person's quiet hours. Safe to run as often as wanted.",
    )
    remind.add_argument(
        "--at",
        metavar="ISO",
        help="act as if it were this time (e.g. 2030-06-01T09:00, in PORTAL_TIMEZONE "
        "unless it has an offset)",
    )
    remind.add_argument(
        "--dry-run", action="store_true", help="say what would be queued, queue nothing"
    )

    export = sub.add_parser(
        "export-changes",
        help="write Confirm/Cancel made in the bot as a FHIR R4 Bundle for the practice",
        description="Write the appointments confirmed or cancelled in the bot since a time as "
        "a FHIR R4 Bundle (type batch): one FHIRPath Patch of the status per appointment, "
        "for the practice's system to take. Changes the practice's own record overrode "
        "since (a newer import) are left out.",
    )
    export.add_argument(
        "--since",
        required=True,
        metavar="ISO",
        help="changes made at or after this time (in PORTAL_TIMEZONE unless it has an offset)",
    )
    export.add_argument(
        "--out", type=Path, metavar="FILE", help="write the Bundle here (default: stdout)"
    )

    demo = sub.add_parser(
        "seed-demo",
        help="add a made-up family to try the bot with, and print their invite links",
        description="Add demo patients (a parent, two children, a partner asking for access) "
        "with appointments, invoices and records, and print invite links for the parent and "
        "the partner. Does nothing if the demo is there already.",
    )
    demo.add_argument(
        "--bot-username",
        help="the bot's @username for the links (default: asked from Telegram with the token)",
    )
    demo.add_argument(
        "--practitioner-telegram-id",
        type=int,
        metavar="ID",
        help="your numeric Telegram user id, to act as the demo practitioner and use /invite",
    )
    sub.add_parser(
        "policy",
        help="show the practice's safeguarding policy, explained",
        description="Print the policy the bot applies (PORTAL_TEEN_AGE, PORTAL_OWN_LOGIN_AGE, "
        "PORTAL_ADULT_AGE, PORTAL_PROXY_TERM_DAYS, PORTAL_NOTICE_DAYS), each in plain words.",
    )

    swp = sub.add_parser(
        "sweep",
        help="carry out the policy and queue due reminders now, once",
        description="Send the policy's notices that are due, make the changes that are due "
        "(each recorded in the access log) and queue the appointment reminders that are due, "
        "exactly as the running bot does every few minutes; running it again changes nothing "
        "twice. The messages are queued for the bot to send (in the recipients' languages). "
        "Prints what it did.",
    )
    swp.add_argument(
        "--at",
        metavar="DATETIME",
        help="as if it were this moment, e.g. 2027-03-01T09:00 (the practice's time zone "
        "unless it names one); changes due by then are made now",
    )
    swp.add_argument(
        "--dry-run", action="store_true", help="print what it would do, and change nothing"
    )

    acc = sub.add_parser(
        "access",
        help="list who has access to a patient, or suspend one person's access",
        description="List everyone with access to a patient's portal, with what the policy "
        "allows them now and its next change; or, with --suspend, end one person's access at "
        "once. Those concerned are told it ended, not who asked (DAPB3051).",
    )
    acc.add_argument("--patient", metavar="ID_OR_EMAIL", help="the patient's id or email")
    acc.add_argument("--suspend", type=int, metavar="GRANT_ID", help="end this access (a grant id)")
    acc.add_argument(
        "--at",
        metavar="ISO",
        help="list (and suspend) as at this time (e.g. 2027-03-01T09:00, in PORTAL_TIMEZONE "
        "unless it has an offset): what the policy allows then",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(
        format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)
    # The job queue's scheduler says so at INFO each time a job runs (every 5 s): only its
    # warnings, such as a missed run, are worth a line.
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    try:
        settings = load_settings()
        policy.install(policy.Policy.from_settings(settings))
        if args.command == "run":
            return _run(settings, args)
        return asyncio.run(_COMMANDS[args.command](settings, args))
    except (SettingsError, UsageError, StorageError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except DataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


def _run(settings: Settings, args: argparse.Namespace) -> int:
    from bot.portalbot import BotAPIUnusable

    try:
        return _serve(settings, args)
    except BotAPIUnusable as exc:  # a rejected token, no connection: one line, exit code 2
        raise UsageError(str(exc)) from None


def _serve(settings: Settings, args: argparse.Namespace) -> int:
    from bot.app import ALLOWED_UPDATES, build_application

    settings.require_token()
    if args.workers < 1:
        raise UsageError("--workers must be 1 or more")
    if args.workers > 1 and not args.webhook_url:
        raise UsageError("--workers above 1 needs --webhook-url: only one process can poll")
    if args.workers > 1 and settings.database_url is None:
        raise UsageError(
            "--workers above 1 needs PORTAL_DATABASE_URL (PostgreSQL): "
            "a SQLite file serves one process"
        )
    if not args.webhook_url:
        asyncio.run(_migrate(settings))
        build_application(settings).run_polling(allowed_updates=ALLOWED_UPDATES)
        return 0
    from bot.webhook import CannotListen, Webhook, serve_one, serve_workers, webhook_app

    url = urlsplit(args.webhook_url)
    if url.scheme not in ("https", "http") or not url.netloc:
        raise UsageError("--webhook-url must be a full URL, e.g. https://bot.example.com/hook")
    secret = settings.webhook_secret.get_secret_value() if settings.webhook_secret else None
    asyncio.run(_migrate(settings))  # once, before any worker starts
    if args.workers > 1:  # a rejected token: one line here, not N workers failing for ever
        asyncio.run(_check_bot_api(settings))
    # Any request whose X-Telegram-Bot-Api-Secret-Token differs is answered 403.
    hook = Webhook(args.webhook_url, url.path, ALLOWED_UPDATES, secret)
    make = webhook_app(lambda: build_application(settings, polling=False), hook)
    try:
        if args.workers == 1:
            asyncio.run(serve_one(make, listen=args.listen, port=args.port))
        else:
            serve_workers(make, listen=args.listen, port=args.port, workers=args.workers)
    except CannotListen as exc:
        raise UsageError(str(exc)) from None
    return 0


async def _check_bot_api(settings: Settings) -> None:
    from bot.app import build_application

    bot = build_application(settings, polling=False).bot
    await bot.initialize()  # BotAPIUnusable: one line, exit code 2 (_run)
    await bot.shutdown()


@asynccontextmanager
async def _migrated(settings: Settings) -> AsyncIterator[Database]:
    """The database, migrated first; closed after the command, also when it fails."""
    db = open_database(settings)
    try:
        await db.migrate()
        yield db
    finally:
        await db.close()


async def _migrate(settings: Settings) -> list[int]:
    db = open_database(settings)
    try:
        return await db.migrate()
    finally:
        await db.close()


async def migrate_command(settings: Settings, args: argparse.Namespace) -> int:
    applied = await _migrate(settings)
    if applied:
        print(f"applied migrations {', '.join(map(str, applied))} to {settings.database_name}")
    else:
        print(f"{settings.database_name} is up to date")
    return 0


async def add_practitioner_command(settings: Settings, args: argparse.Namespace) -> int:
    name = clean_name(args.name)
    if name is None or args.telegram_id <= 0:
        raise UsageError("--name must be 1-100 characters and --telegram-id a positive number")
    async with _migrated(settings) as db, db.transaction() as conn:
        await practitioners.upsert(conn, args.telegram_id, name)
    print(f"{name} (Telegram id {args.telegram_id}) can now send invites with /invite")
    return 0


Located = tuple[str, invitations.InviteRequest]  # where it came from ("… line 3"), and what


def _request(name: str, dob: str | None, email: str | None, where: str) -> Located:
    full_name = clean_name(name)
    if full_name is None:
        raise DataError(f"{where}: the name must be 1-100 characters, with at least one letter")
    birth = None
    if dob and dob.strip():
        typed = dob.strip()
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", typed):
            raise DataError(f"{where}: date of birth {typed!r} is not YYYY-MM-DD")
        try:
            birth = dt.date.fromisoformat(typed)
        except ValueError:  # written right, but no such day: 1985-02-30
            raise DataError(f"{where}: date of birth {typed!r} is not a real date") from None
        if not dt.date(1900, 1, 1) <= birth <= clock.today():
            raise DataError(f"{where}: date of birth {birth} is not plausible")
    address = None
    if email and email.strip():
        address = clean_email(email)
        if address is None:
            raise DataError(f"{where}: {email.strip()!r} is not an email address")
    return where, invitations.InviteRequest(full_name, birth, address)


def _read_csv(path: Path) -> list[Located]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}") from None
    rows = list(csv.reader(text.splitlines()))
    if not rows:
        raise DataError(f"{path}: the file is empty")
    header = [h.strip().lower() for h in rows[0]]
    if header[:2] != ["name", "dob"] or len(header) > 3 or header[2:] not in ([], ["email"]):
        raise DataError(f"{path} line 1: the header must be name,dob or name,dob,email")
    requests = []
    for number, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) not in (2, 3) or len(row) > len(header):
            raise DataError(f"{path} line {number}: expected {len(header)} columns, got {len(row)}")
        requests.append(
            _request(row[0], row[1], row[2] if len(row) == 3 else None, f"{path} line {number}")
        )
    if not requests:
        raise DataError(f"{path}: no patients to invite")
    return requests


async def _bot_username(settings: Settings, given: str | None) -> str:
    if given:
        return given.lstrip("@")
    if settings.bot_token is None:
        raise UsageError("pass --bot-username, or set PORTAL_BOT_TOKEN so it can be looked up")
    from telegram import Bot
    from telegram.error import TelegramError

    from bot.portalbot import describe_failure

    token = settings.require_token()
    try:
        async with Bot(token, base_url=settings.api_base_url) as bot:
            return bot.username
    except TelegramError as exc:
        raise UsageError(describe_failure(exc, token, settings.api_base_url)) from None


async def invite_command(settings: Settings, args: argparse.Namespace) -> int:
    if args.csv and (args.name or args.dob or args.email):
        raise UsageError("use either --csv or --name/--dob/--email, not both")
    if args.csv:
        located = _read_csv(args.csv)
    elif args.name:
        located = [_request(args.name, args.dob, args.email, "invite")]
    else:
        raise UsageError("give --name and --dob, or --csv FILE")
    username = await _bot_username(settings, args.bot_username)
    try:
        async with _migrated(settings) as db:
            created = await invitations.create_invites(
                db, [request for _, request in located], settings.invite_ttl_days
            )
    except invitations.InviteRefused as refused:
        where = next(w for w, request in located if request is refused.request)
        raise DataError(f"{where}: {_refusal(refused)}; no invite was created") from None
    for new in created:
        print(f"{new.patient.full_name}\t{deep_link(username, new.token)}")
    return 0


def _refusal(refused: invitations.InviteRefused) -> str:
    request = refused.request
    if refused.reason is invitations.InviteRefusal.DATE_OF_BIRTH_DIFFERS:
        return (
            f"{request.full_name}'s date of birth {request.date_of_birth} differs from the one "
            f"on record for {request.email}; check it against the practice's records"
        )
    return (
        f"no date of birth for {request.full_name}, and none on record: give one "
        "(--dob, or the dob column), the link asks for it"
    )


async def unlink_command(settings: Settings, args: argparse.Namespace) -> int:
    wanted = _patient_key(args.patient)
    async with _migrated(settings) as db:
        patient = await _find_patient(db, wanted)
        done = await invitations.unlink(db, patient.id)
        if done is not None:
            from storage.state import USER_DATA

            async with db.transaction() as conn:  # their drafts, as a stopped bot stored them
                await state.drop(conn, USER_DATA, "", str(done.login.telegram_user_id))
    who = f"{patient.full_name} (patient {patient.id})"
    if done is None:
        print(f"{who} has no Telegram account signed in; nothing changed")
        return 0
    print(
        f"{who}: Telegram account {done.login.telegram_user_id} signed out of the portal; "
        "the bot tells them in Telegram"
    )
    return 0


async def playground_command(settings: Settings, args: argparse.Namespace) -> int:
    from playground.runner import PlaygroundError, serve

    try:
        return await serve(settings, port=args.port, db=args.db, bot_elsewhere=args.bot_elsewhere)
    except PlaygroundError as exc:
        raise UsageError(str(exc)) from None


async def import_fhir_command(settings: Settings, args: argparse.Namespace) -> int:
    from bot import fhir  # fhir.resources is large: only this command pays for loading it

    try:
        plan = fhir.parse_bundle(args.file, settings.tz, strict=args.strict)
    except OSError as exc:
        raise UsageError(f"cannot read {args.file}: {exc.strerror}") from None
    except fhir.FhirImportError as exc:
        raise DataError(str(exc)) from None
    try:
        async with _migrated(settings) as db:
            summary = await fhir.write_plan(db, plan, strict=args.strict)
    except fhir.FhirImportError as exc:
        _list_skipped(exc.skipped)
        raise DataError(str(exc)) from None
    _list_skipped(summary.skipped)
    print(summary.line())
    return 0


def _list_skipped(skipped: Sequence[Skipped]) -> None:
    for entry in skipped:
        print(f"skipped {entry.line()}", file=sys.stderr)


def _moment(text: str, settings: Settings, option: str) -> int:
    """An ISO date and time as seconds since the epoch; in the practice's time zone
    unless it says otherwise."""
    try:
        moment = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise UsageError(
            f"{option} {text!r} is not an ISO date and time, e.g. 2027-03-01T09:00"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=settings.tz)
    return int(moment.timestamp())


async def remind_command(settings: Settings, args: argparse.Namespace) -> int:
    from bot.reminders import queue_due_reminders
    from storage import clock

    at = _moment(args.at, settings, "--at") if args.at else clock.now()
    async with _migrated(settings) as db:
        # The whole run reads the time from this clock: what it queues is due at `at`.
        with clock.use(clock.FixedClock(at)):
            report = await queue_due_reminders(db, settings, at, dry_run=args.dry_run)
    print(report.line())
    return 0


async def export_changes_command(settings: Settings, args: argparse.Namespace) -> int:
    import json

    from bot.appointment_changes import export

    since = _moment(args.since, settings, "--since")
    async with _migrated(settings) as db:
        done = await export(db, since)
    text = json.dumps(done.bundle, indent=2, ensure_ascii=False) + "\n"
    for line in done.skipped:
        print(f"skipped {line}", file=sys.stderr)
    if args.out is None:
        sys.stdout.write(text)
        return 0
    try:
        args.out.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot write {args.out}: {exc.strerror}") from None
    print(f"wrote {len(done.bundle['entry'])} appointment changes to {args.out}", file=sys.stderr)
    return 0


async def seed_demo_command(settings: Settings, args: argparse.Namespace) -> int:
    from playground import demo

    staff_id = args.practitioner_telegram_id
    if staff_id is not None and staff_id <= 0:
        raise UsageError("--practitioner-telegram-id must be a positive number")
    username = await _bot_username(settings, args.bot_username)
    async with _migrated(settings) as db:
        result = await demo.seed_demo(
            db,
            bot_username=username,
            ttl_days=settings.invite_ttl_days,
            practitioner_telegram_id=staff_id,
            tz=settings.tz,
        )
    if not result.created:
        sam = demo.SAM
        print(
            f"The demo is already in {settings.db_path}; for a fresh link run: python -m bot "
            f'invite --name "{sam.full_name}" --dob {sam.date_of_birth} --email {sam.email} '
            "(likewise for the partner, with their name, date of birth and email)"
        )
        return 0
    print(f"Demo family added to {settings.db_path}. Open each link in a different Telegram")
    print("account and type the date of birth when the bot asks for it:")
    for label, link in result.links.items():
        person = demo.INVITED[label]
        print(f"  {label:<8} {person.full_name:<11} born {person.date_of_birth}  {link}")
    print(
        f"{demo.SAM.full_name} holds {demo.LILY.full_name} (clinical, edit) and "
        f"{demo.NOAH.full_name} (administrative, view); {demo.ALEX.full_name}'s request to see "
        f"{demo.SAM.full_name}'s portal waits for their approval."
    )
    print(f"The links work once and expire in {settings.invite_ttl_days} days.")
    if staff_id is not None:
        print(f"Telegram user {staff_id} is {demo.PRACTITIONER} and can send /invite.")
    else:
        print(f"Pass --practitioner-telegram-id to act as {demo.PRACTITIONER} and use /invite.")
    return 0


async def sweep_command(settings: Settings, args: argparse.Namespace) -> int:
    from bot.reminders import queue_due_reminders
    from bot.sweep import sweep

    at = _moment(args.at, settings, "--at") if args.at else None
    rules = policy.current()
    # The migrations run on that clock too.
    with clock.use(clock.FixedClock(at)) if at is not None else nullcontext():
        async with _migrated(settings) as db:
            report = await sweep(db, rules, at, dry_run=args.dry_run)
            reminded = await queue_due_reminders(db, settings, report.at, dry_run=args.dry_run)
    when = dt.datetime.fromtimestamp(report.at, settings.tz).replace(tzinfo=None)
    ahead = report.at - int(clock.SYSTEM.time())  # the computer's own, not --at
    print(
        f"Policy sweep as at {when.isoformat(sep=' ', timespec='minutes')} ({settings.timezone})"
        + (", dry run: nothing changed" if args.dry_run else "")
    )
    if ahead > 3600:
        print(f"note: that is {ahead // 86400} days ahead of this computer's clock")
    for line in report.changes:
        print(f"change: {line}")
    for line in report.notices:
        print(f"notice: {line}")
    print(report.summary() + ("" if args.dry_run else "; the bot sends the notices"))
    print(f"Reminders: {reminded.line()}")
    return 0


def _patient_key(text: str) -> tuple[str, str | None]:
    """--patient as typed (an id or an email), and the email when it is one."""
    key = text.strip()
    email = None if key.isdigit() else clean_email(key)
    if not key.isdigit() and email is None:
        raise UsageError("--patient must be a patient id (a number) or an email address")
    return key, email


async def _find_patient(db: Database, wanted: tuple[str, str | None]) -> Patient:
    key, email = wanted
    async with db.read() as conn:
        found = await (patients.by_email(conn, email) if email else patients.get(conn, int(key)))
    if found is None:
        raise DataError(f"no patient with {'email ' + email if email else 'id ' + key}")
    return found


_RULE_WORDS = {
    policy.Rule.TEEN: "turns {age}: Clinical becomes Administrative",
    policy.Rule.ADULT: "turns {age}: this access ends",
}


async def access_command(settings: Settings, args: argparse.Namespace) -> int:
    if args.patient is None and args.suspend is None:
        raise UsageError("give --patient ID_OR_EMAIL to list, and/or --suspend GRANT_ID")
    at = _moment(args.at, settings, "--at") if args.at else None
    with clock.use(clock.FixedClock(at)) if at is not None else nullcontext():
        return await _access(settings, args)


async def _access(settings: Settings, args: argparse.Namespace) -> int:
    from bot import safeguarding

    async with _migrated(settings) as db:
        subject = await _find_patient(db, _patient_key(args.patient)) if args.patient else None
        if args.suspend is not None:
            done = await safeguarding.suspend_by_practitioner(
                db, args.suspend, None, subject.id if subject else None
            )
            if done.outcome is safeguarding.Outcome.NOT_YOURS:
                where = f" on {subject.full_name}'s portal" if subject else ""
                raise DataError(f"no access with grant id {args.suspend}{where}")
            if done.outcome is safeguarding.Outcome.ALREADY:
                print(f"grant {args.suspend} is not active; nothing changed")
            else:
                print(
                    f"grant {args.suspend}: access ended; those concerned are told it ended, "
                    "not who asked"
                )
        if subject is not None:
            listed = await safeguarding.who_has_access(db, subject.id)
            assert listed is not None
            _print_access(settings, *listed)
    return 0


def _print_access(
    settings: Settings, subject: Patient, lines: list[safeguarding_types.AccessLine]
) -> None:
    born = f", born {subject.date_of_birth}" if subject.date_of_birth else ""
    print(f"{subject.full_name} (patient {subject.id}{born}): {len(lines)} with access")
    rules = policy.current()
    for line in lines:
        grant = line.entry.grant
        text = (
            f"  grant {grant.id}: {line.entry.other_name} (patient {grant.accessor_id}), "
            f"{grant.relationship}, {grant.level}/{grant.role}"
        )
        if line.level is None:
            text += ", ended by the policy (the sweep records it)"
        elif line.level is not grant.level:
            text += f", {line.level} now (the {policy.Rule.TEEN} rule)"
        if line.next is not None:
            day = dt.datetime.fromtimestamp(line.next.at, settings.tz).date().isoformat()
            why = _RULE_WORDS.get(line.next.rule, "its end date")
            age = rules.age_of(line.next.rule)
            who = f"{subject.full_name} " if line.next.rule is not policy.Rule.TERM else ""
            text += f", until {day} ({who}{why.format(age=age)})"
        print(text)


async def policy_command(settings: Settings, args: argparse.Namespace) -> int:
    print("The practice's safeguarding policy (PORTAL_* settings, see the README's Policy):")
    for line in policy.explain(policy.current()):
        print(textwrap.fill(line, width=88, initial_indent="- ", subsequent_indent="  "))
    return 0


_COMMANDS = {
    "migrate": migrate_command,
    "add-practitioner": add_practitioner_command,
    "invite": invite_command,
    "unlink": unlink_command,
    "playground": playground_command,
    "import-fhir": import_fhir_command,
    "seed-demo": seed_demo_command,
    "remind": remind_command,
    "export-changes": export_changes_command,
    "policy": policy_command,
    "sweep": sweep_command,
    "access": access_command,
}
