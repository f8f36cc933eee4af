"""Every shipped language is complete and safe: no message untranslated, no placeholder or
HTML tag lost or invented, and nothing in the code missing from the catalogs."""

from __future__ import annotations

import os
import re
from collections import Counter
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog, Message
from babel.messages.pofile import read_po

from bot import i18n
from bot.catalogs import extract
from bot.i18n import DOMAIN, LANGUAGES, LOCALES_DIR

PLACEHOLDER = re.compile(r"\{[a-z_]*\}")
TAG = re.compile(r"</?[a-z-]+")


def _catalog(language: str) -> Catalog:
    with (LOCALES_DIR / language / "LC_MESSAGES" / f"{DOMAIN}.po").open("rb") as fh:
        return read_po(fh, locale=language)


def _key(message: Message) -> tuple[str | None, str]:
    ident = message.id[0] if isinstance(message.id, tuple) else message.id
    return message.context, ident


def _messages(catalog: Catalog) -> list[Message]:
    return [m for m in catalog if m.id]


@pytest.fixture(scope="module")
def from_code(tmp_path_factory: pytest.TempPathFactory) -> set[tuple[str | None, str]]:
    pot = tmp_path_factory.mktemp("pot") / "messages.pot"
    extract(pot)
    with pot.open("rb") as fh:
        return {_key(m) for m in _messages(read_po(fh))}


@pytest.mark.parametrize("language", sorted(LANGUAGES))
def test_the_catalog_covers_every_message_in_the_code(
    language: str, from_code: set[tuple[str | None, str]]
) -> None:
    shipped = {_key(m) for m in _messages(_catalog(language))}
    missing = sorted(str(k) for k in from_code - shipped)
    assert not missing, f"run `python -m bot.catalogs` and translate: {missing[:5]}"


@pytest.mark.parametrize("language", sorted(LANGUAGES))
def test_every_message_is_translated_with_the_same_placeholders_and_tags(language: str) -> None:
    catalog = _catalog(language)
    problems: list[str] = []
    for message in _messages(catalog):
        ids = message.id if isinstance(message.id, tuple) else (message.id,)
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        if message.fuzzy:
            problems.append(f"fuzzy: {ids[0]!r}")
        wanted = catalog.num_plurals if message.pluralizable else 1
        if len([s for s in strings[:wanted] if s]) < wanted:
            problems.append(f"untranslated: {ids[0]!r}")
            continue
        expected_places = set(PLACEHOLDER.findall(" ".join(ids)))
        expected_tags = Counter(TAG.findall(ids[0]))
        for text in strings[:wanted]:
            if set(PLACEHOLDER.findall(text)) - expected_places or (
                not message.pluralizable and set(PLACEHOLDER.findall(text)) != expected_places
            ):
                problems.append(f"placeholders differ: {ids[0]!r} -> {text!r}")
            if Counter(TAG.findall(text)) != expected_tags:
                problems.append(f"HTML tags differ: {ids[0]!r} -> {text!r}")
    assert not problems, "\n".join(problems[:20])


def test_the_catalog_test_can_fail(tmp_path: Path) -> None:
    """A catalog with a lost placeholder and an empty entry is caught by the same rules."""
    po = tmp_path / "x.po"
    po.write_text(
        'msgid ""\nmsgstr ""\n"Content-Type: text/plain; charset=utf-8\\n"\n\n'
        'msgid "Hello {name}"\nmsgstr "Bonjour"\n\nmsgid "Bye"\nmsgstr ""\n',
        encoding="utf-8",
    )
    with po.open("rb") as fh:
        catalog = read_po(fh, locale="fr")
    hello, bye = _messages(catalog)
    assert set(PLACEHOLDER.findall(hello.string)) != set(PLACEHOLDER.findall(hello.id))
    assert not bye.string


def test_a_compiled_catalog_is_reused_only_for_the_same_po(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "vi" / "LC_MESSAGES"
    folder.mkdir(parents=True)
    po = folder / f"{DOMAIN}.po"
    po.write_bytes((LOCALES_DIR / "vi" / "LC_MESSAGES" / f"{DOMAIN}.po").read_bytes())
    monkeypatch.setattr(i18n, "LOCALES_DIR", tmp_path)
    load = i18n._catalog.__wrapped__  # the process-wide cache would hide every change

    def compiled() -> list[Path]:
        return sorted(folder.glob("*.mo"))

    assert load("vi").gettext("Home menu") == "Menu chính"
    [first] = compiled()
    assert sorted(folder.iterdir()) == sorted([po, first])  # no partial file left behind

    # An edited .po wins over what was compiled before, even when it arrives with an older
    # mtime (deployed with its times kept); the old compiled file goes.
    po.write_text(po.read_text().replace('msgstr "Menu chính"', 'msgstr "Trang chủ"'))
    os.utime(po, ns=(first.stat().st_mtime_ns - 10**9,) * 2)
    assert load("vi").gettext("Home menu") == "Trang chủ"
    [second] = compiled()
    assert second != first

    # A damaged compiled file is compiled again rather than trusted or fatal.
    second.write_bytes(b"not a catalog")
    assert load("vi").gettext("Home menu") == "Trang chủ"

    # Where nothing can be written (a read-only install), it still translates.
    second.unlink()
    folder.chmod(0o555)
    try:
        assert load("vi").gettext("Home menu") == "Trang chủ"
        assert not compiled() or os.geteuid() == 0  # root writes anyway
    finally:
        folder.chmod(0o755)
