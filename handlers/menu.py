"""The home menu a signed-in patient sees, and the words around it."""

from __future__ import annotations

from bot import labels
from bot.access import Area
from bot.callbacks import AddPatient, OpenAccess, OpenActivity, OpenArea, OpenSwitch, TurnHomePage
from bot.context import Caller
from bot.i18n import Translator
from bot.keyboards import Button, Keyboard
from bot.records import Page
from bot.text import esc
from handlers.paging import page_row
from storage.models import AccessEntry

HOME_PAGE_SIZE = 10  # names on the home message; a carer may access hundreds


def home_keyboard(_: Translator, page: Page[AccessEntry] | None = None) -> Keyboard:
    """The menu; with `page`, ◀ Page n ▶ above it when the patients take several pages."""
    nav = page_row(_, page, lambda n: TurnHomePage(n).encode()) if page else []

    def area(label: str, area: Area) -> Button:
        return Button(label, data=OpenArea(area).encode())

    return Keyboard(
        [
            *([nav] if nav else []),
            [area(_("📅 Appointments"), Area.APPOINTMENTS), area(_("🧾 Invoices"), Area.INVOICES)],
            [area(_("📋 Records"), Area.RECORDS), area(_("👤 Details"), Area.DETAILS)],
            [Button(_("🔄 Switch patient"), data=OpenSwitch().encode())],
            [Button(_("➕ Add a patient you access"), data=AddPatient().encode())],
            [
                Button(_("🔐 Access"), data=OpenAccess().encode()),
                Button(_("📜 Activity"), data=OpenActivity().encode()),
            ],
        ]
    )


def home_text(who: Caller, page: Page[AccessEntry], total: int) -> str:
    """Who is signed in, one page of the `total` patients they access, and the question."""
    _ = who._
    assert who.patient is not None
    lines = [
        _("You're signed in as <b>{name}</b>.").format(name=esc(who.patient.full_name)),
    ]
    if page.items:
        lines += ["", _("<b>Patients you access</b>")]
        lines += ["• " + labels.patient_line(_, e.other_name, e.grant) for e in page.items]
    if total > len(page.items):
        first = page.number * HOME_PAGE_SIZE + 1
        lines.append(
            _("{first}–{last} of {total}. To find someone by name, tap 🔄 Switch patient.").format(
                first=first, last=first + len(page.items) - 1, total=total
            )
        )
    lines += ["", _("What would you like to do?")]
    return "\n".join(lines)


def help_text(who: Caller) -> str:
    _ = who._
    lines = [_("<b>What I can do</b>"), ""]
    if who.signed_in:
        lines += [
            _("/start — your home menu"),
            _("/switch — choose whose portal to see: yours or someone you access"),
            _("/appointments — upcoming and past appointments"),
            _("/invoices — invoices and what is paid"),
            _("/records — clinical records (with Clinical access)"),
            _("/details — name, date of birth and email"),
            _("/addpatient — add a patient you access, such as your child"),
            _("/access — who you access, who accesses you, and requests"),
            _("/activity — who looked at your records and what they did"),
            _("/notifications — reminders and notices: what, about whom, and quiet hours"),
            _("/signout — sign this Telegram account out of the portal (a new invite signs in)"),
        ]
    else:
        lines += [
            _("/start — sign in with the invite link from your practice"),
        ]
    if who.is_practitioner:
        lines.append(_("/invite — invite a patient to the portal"))
        lines.append(_("/unlink — sign a patient's Telegram account out of the portal"))
    lines += [
        _("/language — change the language I speak"),
        _("/help — this list"),
        _("/cancel — stop what you're doing"),
    ]
    return "\n".join(lines)
