"""Keep the gettext catalogs in step with the code: `python -m bot.catalogs`.

Extracts every message into locales/messages.pot (babel), merges it into each shipped
language's .po, and fills the English catalog from the source text. Translators then
fill the new, empty entries of the other languages; tests/test_catalogs.py fails until
they have.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from babel.messages.frontend import CommandLineInterface
from babel.messages.pofile import read_po, write_po

from bot.i18n import DOMAIN, LANGUAGES, LOCALES_DIR, SOURCE_LANGUAGE

ROOT = LOCALES_DIR.parent
POT = LOCALES_DIR / f"{DOMAIN}.pot"


def extract(output: Path = POT) -> None:
    _pybabel(
        "extract",
        "-F",
        str(ROOT / "babel.cfg"),
        "-o",
        str(output),
        "--sort-by-file",
        "--no-wrap",
        "-k",
        "N_",
        "--project=portal-bot",
        "--add-comments=Translators:",
        str(ROOT),
    )


def update() -> None:
    extract()
    for language in LANGUAGES:
        po = LOCALES_DIR / language / "LC_MESSAGES" / f"{DOMAIN}.po"
        verb = "update" if po.exists() else "init"
        extra = ["--ignore-obsolete"] if verb == "update" else []
        _pybabel(verb, "-i", str(POT), "-d", str(LOCALES_DIR), "-l", language, "--no-wrap", *extra)
    _fill_source()


def _fill_source() -> None:
    """English is the source language: its translation of each message is the message."""
    po = LOCALES_DIR / SOURCE_LANGUAGE / "LC_MESSAGES" / f"{DOMAIN}.po"
    with po.open("rb") as fh:
        catalog = read_po(fh, locale=SOURCE_LANGUAGE)
    for message in catalog:
        if not message.id:
            continue
        message.string = message.id
        message.flags.discard("fuzzy")
    with po.open("wb") as fh:
        write_po(fh, catalog, width=0, sort_by_file=True)


def _pybabel(*args: str) -> None:
    # Relative paths in the catalogs' source references, whoever runs this from where.
    here = Path.cwd()
    os.chdir(ROOT)
    try:
        CommandLineInterface().run(["pybabel", "-q", *args])  # type: ignore[no-untyped-call]  # babel's CLI: no hints
    finally:
        os.chdir(here)


if __name__ == "__main__":
    update()
    sys.exit(0)
