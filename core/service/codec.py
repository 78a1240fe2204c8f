"""Engine events, commands and results to JSON-ready dicts and back, for the control socket.

Why type-driven and not pickle: the socket is a contract between two processes that may run
different releases (docs/service.md), so the wire holds plain JSON: every dataclass as an object
with its class name under ``"type"``, Decimal as its exact string (never a float: money stays
Decimal from the engine to the other console), datetime as ISO 8601 with its offset, a
duration (timedelta) as its seconds, enums by value, tuples as lists. Decoding reads the field types from the dataclass itself, so a new event
class is one line in ``WIRE_TYPES``. Unknown fields are ignored (a newer engine may add some) and
a missing field with a default takes it (an older engine).
"""
from __future__ import annotations

import dataclasses
import types
import typing
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from enum import Enum
from functools import cache
from typing import Any, Union, get_args, get_origin

from core import events, model
from core.reconcile.compare import ReconcileReport, ReconcileRow
from core.venue.base import VenueCapabilities

WIRE_TYPES: dict[str, type] = {cls.__name__: cls for cls in (
    # engine -> subscribers (core.events.EngineEvent)
    model.Fill, model.OrderUpdate, model.CloseResult, model.FundingPayment,
    model.PositionSnapshot, events.PositionGone, events.AccountSnapshot, events.MarkPrice,
    events.StreamStatus, events.Notice, events.FundingRate, events.RiskEvent, events.RiskStatus,
    events.Candle,
    # console -> engine (core.events.Command) and the answer
    events.PlaceOrder, events.ClosePosition, events.CloseAll, events.CancelOrder,
    events.PauseStrategy, events.ResumeTrading, events.KillSwitch, events.SetTpSl,
    events.CommandResult,
    # snapshot and calls
    model.Instrument, ReconcileRow, ReconcileReport, VenueCapabilities,
)}


class WireError(ValueError):
    """A frame that does not decode into what it claims to be (names the type and field)."""


def encode(obj: Any) -> Any:
    """A JSON-ready value for ``obj`` (dataclasses of WIRE_TYPES, Decimal, datetime, enums ...)."""
    if obj is None or isinstance(obj, (bool, int, str)):
        return obj
    if isinstance(obj, Enum):
        return obj.value
    if isinstance(obj, Decimal):
        return format(obj, "f") if obj.is_finite() else str(obj)
    if isinstance(obj, float):
        return obj
    if isinstance(obj, datetime):
        return obj.isoformat()
    if isinstance(obj, timedelta):  # a duration (a venue's funding interval): its seconds
        return obj.total_seconds()
    if isinstance(obj, (list, tuple)):
        return [encode(v) for v in obj]
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        name = type(obj).__name__
        if WIRE_TYPES.get(name) is not type(obj):
            raise WireError(f"{name} is not a wire type")
        out: dict[str, Any] = {"type": name}
        for f in _fields(type(obj)):
            out[f.name] = encode(getattr(obj, f.name))
        return out
    raise WireError(f"cannot encode a {type(obj).__name__}")


def decode(data: Any, expected: type | None = None) -> Any:
    """The object ``data`` encodes; with ``expected``, refuse anything else (WireError)."""
    if not isinstance(data, dict) or not isinstance(data.get("type"), str):
        raise WireError("expected an object with a type")
    cls = WIRE_TYPES.get(data["type"])
    if cls is None:
        raise WireError(f"unknown type {data['type']!r}")
    if expected is not None and not issubclass(cls, expected):
        raise WireError(f"expected a {expected.__name__}, got {data['type']}")
    hints = _hints(cls)
    kwargs: dict[str, Any] = {}
    for f in _fields(cls):
        if f.name not in data:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise WireError(f"{cls.__name__}: field {f.name} is missing")
            continue
        try:
            kwargs[f.name] = _value(data[f.name], hints[f.name])
        except (ValueError, TypeError, InvalidOperation) as exc:
            raise WireError(f"{cls.__name__}.{f.name}: {exc}") from None
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as exc:
        raise WireError(f"{cls.__name__}: {exc}") from None


@cache
def _fields(cls: type) -> tuple[dataclasses.Field[Any], ...]:
    return dataclasses.fields(cls)


@cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _value(raw: Any, hint: Any) -> Any:
    origin = get_origin(hint)
    if origin in (Union, types.UnionType):
        args = [a for a in get_args(hint) if a is not type(None)]
        if raw is None:
            return None
        if len(args) == 1:
            return _value(raw, args[0])
        if isinstance(raw, dict):
            return decode(raw)
        raise TypeError(f"cannot tell which of {hint} {raw!r} is")
    if origin is tuple:
        targs = get_args(hint)
        if not isinstance(raw, list):
            raise TypeError(f"expected a list, got {raw!r}")
        item = targs[0] if targs else Any
        return tuple(_value(v, item) for v in raw)
    if origin is list:
        largs = get_args(hint)
        item = largs[0] if largs else Any
        if not isinstance(raw, list):
            raise TypeError(f"expected a list, got {raw!r}")
        return [_value(v, item) for v in raw]
    if hint is timedelta:
        return _duration(raw)
    return _scalar(raw, hint)


def _duration(raw: Any) -> timedelta:
    if isinstance(raw, bool) or not isinstance(raw, (int, float)):
        raise TypeError(f"expected seconds, got {raw!r}")
    return timedelta(seconds=raw)


def _scalar(raw: Any, hint: Any) -> Any:
    if hint is Any:
        return decode(raw) if isinstance(raw, dict) else raw
    if hint is Decimal:
        if not isinstance(raw, str):
            raise TypeError(f"expected a decimal string, got {raw!r}")
        return Decimal(raw)
    if hint is datetime:
        if not isinstance(raw, str):
            raise TypeError(f"expected an ISO time, got {raw!r}")
        return datetime.fromisoformat(raw)
    if isinstance(hint, type) and issubclass(hint, Enum):
        return hint(raw)
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return decode(raw, hint)
    if hint is float:
        if isinstance(raw, bool) or not isinstance(raw, (int, float)):
            raise TypeError(f"expected a number, got {raw!r}")
        return float(raw)  # float ok: only fields typed float (latency, seconds); money is Decimal
    if hint in (bool, int, str):
        if type(raw) is not hint:
            raise TypeError(f"expected {hint.__name__}, got {raw!r}")
        return raw
    raise TypeError(f"unsupported field type {hint}")
