"""Who is told what is in one table (bot/notifier.py) and the words in another
(handlers/notices.py): every event has its line in the one, every kind of message is queued
by it and has its words in the other."""

from __future__ import annotations

import ast
import inspect
import typing

from bot import events, notifier
from handlers.notices import _RENDERERS
from storage.outbox import Kind


def _notify_tree() -> ast.AST:
    return ast.parse(inspect.getsource(notifier))


def test_every_event_has_its_case_in_notify() -> None:
    cases = {
        node.pattern.cls.id
        for node in ast.walk(_notify_tree())
        if isinstance(node, ast.match_case)
        and isinstance(node.pattern, ast.MatchClass)
        and isinstance(node.pattern.cls, ast.Name)
    }
    assert cases == {kind.__name__ for kind in typing.get_args(events.Event)}


def test_every_kind_is_queued_by_the_notifier() -> None:
    queued = {
        node.attr
        for node in ast.walk(_notify_tree())
        if isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Name)
        and node.value.id == "Kind"
    }
    assert queued == {kind.name for kind in Kind}


def test_every_kind_has_one_renderer() -> None:
    assert set(_RENDERERS) == set(Kind)
