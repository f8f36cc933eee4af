"""Button data as typed values (bot/callbacks.py): every kind round-trips, refuses what
is not exactly itself, and fits Telegram's 64 bytes at its largest."""

from __future__ import annotations

import dataclasses
import enum
import typing

import pytest

import bot.app  # noqa: F401  (imports every module that defines kinds)
from bot.callbacks import MAX_BYTES, Callback


def _largest(kind: type[Callback]) -> Callback:
    hints = typing.get_type_hints(kind)
    values: dict[str, object] = {}
    for f in dataclasses.fields(kind):
        hint = hints[f.name]
        if hint is int:
            values[f.name] = 10**18 - 1
        elif hint is bool:
            values[f.name] = True
        elif isinstance(hint, type) and issubclass(hint, enum.Enum):
            values[f.name] = max(hint, key=lambda m: len(str(m.value)))
        else:
            values[f.name] = "w" * 32
    return kind(**values)


KINDS = Callback.kinds


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.__name__)
def test_each_kind_round_trips_at_its_largest_within_64_bytes(kind: type[Callback]) -> None:
    value = _largest(kind)
    data = value.encode()
    assert len(data.encode()) <= MAX_BYTES
    assert kind.parse(data) == value


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.__name__)
def test_no_other_kind_claims_a_kinds_data(kind: type[Callback]) -> None:
    data = _largest(kind).encode()
    assert [k for k in KINDS if k.parse(data) is not None] == [kind]


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.__name__)
def test_forged_variants_do_not_parse(kind: type[Callback]) -> None:
    data = _largest(kind).encode()
    for forged in (data + ":1", data + "x", "x" + data, data.upper(), data[:-1] + "\n"):
        if forged != data:
            assert kind.parse(forged) is None, forged
    assert kind.parse(None) is None


def test_there_are_kinds() -> None:
    assert len(KINDS) >= 1
