"""One row of buttons to move through a long list, for every message that pages."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from bot.i18n import Translator
from bot.keyboards import Button


class Paged(Protocol):
    """A page of a list (bot.records.Page, bot.access.LogPage): which one, and is there
    another after it."""

    @property
    def number(self) -> int: ...

    @property
    def has_more(self) -> bool: ...


def page_row(_: Translator, page: Paged, data: Callable[[int], str]) -> list[Button]:
    """◀ Page n ▶ for `page`; `data(n)` is the callback data that shows page n. Empty when
    everything fits on one page."""
    row = []
    if page.number > 0:
        row.append(Button("◀", data=data(page.number - 1)))
    if page.number > 0 or page.has_more:
        label = _("Page {n}").format(n=page.number + 1)
        row.append(Button(label, data=data(page.number)))
    if page.has_more:
        row.append(Button("▶", data=data(page.number + 1)))
    return row
