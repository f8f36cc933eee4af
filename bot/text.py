"""Checks and escaping for what people type."""

from __future__ import annotations

import html
import re
import unicodedata

NAME_MAX = 100
EMAIL_MAX = 254
_EMAIL = re.compile(r"^[^@\s<>\"']+@[^@\s<>\"']+\.[^@\s<>\"'.]{2,}$")


def clean_name(text: str | None) -> str | None:
    """A person's name: trimmed, inner spaces collapsed, 1–100 characters, no control characters."""
    if text is None:
        return None
    name = " ".join(text.split())
    if not 1 <= len(name) <= NAME_MAX:
        return None
    if any(unicodedata.category(ch) in ("Cc", "Cs", "Co", "Cn") for ch in name):
        return None
    return name


def clean_email(text: str | None) -> str | None:
    if text is None:
        return None
    email = text.strip()
    if len(email) > EMAIL_MAX or not _EMAIL.match(email):
        return None
    return email


def esc(text: object) -> str:
    """Anything from a user or the database, made safe inside an HTML message."""
    return html.escape(str(text), quote=False)
