"""The control socket's codec: every engine event, command and result survives JSON exactly.

Money must stay Decimal from the engine to another process's console: each Decimal field is
given a value a float would not keep (28 significant digits, trailing zeros) and must come back
equal, as a Decimal, with the same digits.
"""
from __future__ import annotations

import dataclasses
import types
import typing
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from enum import Enum
from typing import Any, get_args, get_origin

import orjson
import pytest

from core import events, model
from core.service.codec import WIRE_TYPES, WireError, decode, encode

MONEY = Decimal("-1234567.123456789012345678901230")
WHEN = datetime(2026, 12, 6, 9, 30, 1, 123456, tzinfo=UTC)


def _sample(hint: Any) -> Any:
    origin = get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in get_args(hint) if a is not type(None)]
        return _sample(args[0])
    if origin is tuple:
        return (_sample(get_args(hint)[0]), _sample(get_args(hint)[0]))
    if hint is Decimal:
        return MONEY
    if hint is datetime:
        return WHEN
    if hint is timedelta:
        return timedelta(hours=4, microseconds=250000)
    if isinstance(hint, type) and issubclass(hint, Enum):
        return list(hint)[-1]
    if hint is bool:
        return True
    if hint is int:
        return 42
    if hint is float:
        return 12.5
    if hint is str:
        return "é\"x\n#1"
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return _instance(hint)
    raise AssertionError(f"no sample for {hint}")


def _instance(cls: type) -> Any:
    hints = typing.get_type_hints(cls)
    return cls(**{f.name: _sample(hints[f.name]) for f in dataclasses.fields(cls)})


def _members(union: Any) -> set[type]:
    return set(get_args(union))


def test_every_event_and_command_is_a_wire_type() -> None:
    assert _members(events.EngineEvent) <= set(WIRE_TYPES.values())
    assert _members(events.Command) <= set(WIRE_TYPES.values())
    assert events.CommandResult in WIRE_TYPES.values()


@pytest.mark.parametrize("name", sorted(WIRE_TYPES))
def test_round_trip_through_json(name: str) -> None:
    obj = _instance(WIRE_TYPES[name])
    wire = orjson.loads(orjson.dumps(encode(obj)))
    back = decode(wire)
    assert back == obj and type(back) is type(obj)
    for f in dataclasses.fields(obj):
        value, got = getattr(obj, f.name), getattr(back, f.name)
        if isinstance(value, Decimal):
            assert isinstance(got, Decimal) and str(got) == str(value)  # digits kept, no float


def test_optional_none_and_offsets_survive() -> None:
    snap = events.StreamStatus("private", events.LinkState.CONNECTED, None, "", None)
    assert decode(orjson.loads(orjson.dumps(encode(snap)))) == snap
    east = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone(timedelta(hours=8)))
    note = events.Notice(events.NoticeLevel.WARNING, "x", east)
    assert decode(encode(note)).ts == east


def test_bad_frames_are_refused_by_name() -> None:
    good = encode(events.ClosePosition("BTC/USDT:USDT", model.PosSide.NET, Decimal("1.5")))
    with pytest.raises(WireError, match="contracts"):
        decode({**good, "contracts": 1.5})  # a float is never money
    with pytest.raises(WireError, match="unknown type"):
        decode({"type": "Shutdown"})
    with pytest.raises(WireError, match="expected a Command|expected a"):
        decode(encode(events.Notice(events.NoticeLevel.INFO, "x")), events.CommandResult)
    with pytest.raises(WireError, match="symbol is missing"):
        decode({"type": "ClosePosition"})
