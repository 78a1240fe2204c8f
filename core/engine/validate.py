"""Sizes and prices checked once, at the engine's door, before any other check sees a command.

Why here and not in each check: a negative size was sent as a buy of its absolute value while the
exposure limits, reading the sign, took it for a reduction; NaN and Infinity failed deep inside
the risk guard with ``[<class 'decimal.InvalidOperation'>]``. Every later step (the risk limits,
the venue) may rely on what passes here: a Decimal, finite, above zero, on the instrument's lot
or tick grid, at least its minimum size and at most its maximum order size (when the exchange
gives one). Strategy and console commands alike, every command that carries a size or a price
(an order with its TP/SL, a partial close, a TP/SL move).

Each refusal is one plain line naming the command, the field and what to do.
"""
from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal, InvalidOperation

from core.events import ClosePosition, Command, PlaceOrder, SetTpSl
from core.model import Instrument, OrderSide, OrderType, PosSide
from core.money import plain

ORDER_TYPES = frozenset(t.value for t in OrderType)
POS_SIDES = frozenset(p.value for p in PosSide)


class Invalid(Exception):
    """One field that cannot be sent; the message says which and why."""


def _shown(value: object) -> str:
    if isinstance(value, Decimal):
        return plain(value) if value.is_finite() else str(value)
    return f"{type(value).__name__} {value!r}"


def _on_grid(value: Decimal, step: Decimal) -> bool:
    if step <= 0:
        return True
    try:
        return value % step == 0
    except InvalidOperation:  # too many digits for the step: not on any grid we could send
        return False


def _positive(name: str, value: object) -> Decimal:
    if not isinstance(value, Decimal):
        raise Invalid(f"{name} must be a Decimal (e.g. Decimal(\"1\")), got {_shown(value)}; "
                      "floats are never used for money")
    if not value.is_finite():
        raise Invalid(f"{name} must be a finite number, got {value}")
    if value <= 0:
        raise Invalid(f"{name} must be above 0, got {plain(value)}")
    return value


def size(name: str, value: object, inst: Instrument) -> Decimal:
    """A size in contracts: positive, a multiple of the lot, at least the minimum."""
    contracts = _positive(name, value)
    if contracts < inst.min_size:
        raise Invalid(f"{name} {plain(contracts)} contracts is below {inst.symbol}'s minimum "
                      f"{plain(inst.min_size)}")
    if not _on_grid(contracts, inst.lot_size):
        raise Invalid(f"{name} {plain(contracts)} contracts is not a multiple of {inst.symbol}'s lot "
                      f"{plain(inst.lot_size)}")
    return contracts


def price(name: str, value: object, inst: Instrument) -> Decimal:
    """A price: positive, a multiple of the tick."""
    px = _positive(name, value)
    if not _on_grid(px, inst.tick_size):
        raise Invalid(f"{name} {plain(px)} is not a multiple of {inst.symbol}'s tick {plain(inst.tick_size)}")
    return px


def _instrument(symbol: object, instruments: Mapping[str, Instrument]) -> Instrument:
    inst = instruments.get(symbol) if isinstance(symbol, str) else None
    if inst is None:
        raise Invalid(f"symbol {symbol!r} is not traded here ({', '.join(instruments) or 'none'})")
    return inst


def _triggers(take_profit: object, stop_loss: object, inst: Instrument) -> None:
    if take_profit is not None:
        price("take profit", take_profit, inst)
    if stop_loss is not None:
        price("stop loss", stop_loss, inst)


def _order(cmd: PlaceOrder, inst: Instrument) -> None:
    if not isinstance(cmd.side, OrderSide):
        raise Invalid(f"side must be OrderSide.BUY or OrderSide.SELL, got {cmd.side!r}")
    if cmd.order_type not in ORDER_TYPES:
        raise Invalid(f"order type must be market or limit, got {cmd.order_type!r}")
    contracts = size("size", cmd.contracts, inst)
    limit = cmd.order_type == OrderType.LIMIT
    most = inst.max_limit_size if limit else inst.max_market_size
    if most is not None and contracts > most:
        raise Invalid(f"size {plain(contracts)} contracts is above {inst.symbol}'s maximum "
                      f"{'limit' if limit else 'market'} order size {plain(most)}")
    if limit and cmd.price is None:
        raise Invalid("a limit order needs a price")
    if cmd.price is not None:
        price("price", cmd.price, inst)
    _triggers(cmd.take_profit, cmd.stop_loss, inst)


def _check(command: Command, instruments: Mapping[str, Instrument]) -> None:
    if not isinstance(command, PlaceOrder | ClosePosition | SetTpSl):
        return  # nothing to size or price
    inst = _instrument(command.symbol, instruments)
    if command.pos_side not in POS_SIDES:
        raise Invalid(f"pos_side must be one of {', '.join(sorted(POS_SIDES))}, got {command.pos_side!r}")
    if isinstance(command, PlaceOrder):
        _order(command, inst)
    elif isinstance(command, ClosePosition):
        if command.contracts is not None:
            size("close size", command.contracts, inst)
    else:
        _triggers(command.take_profit, command.stop_loss, inst)


def refusal(command: Command, instruments: Mapping[str, Instrument]) -> str | None:
    """Why ``command``'s sizes or prices cannot be sent (one line), or None when they can."""
    try:
        _check(command, instruments)
    except Invalid as exc:
        return f"{type(command).__name__} refused: {exc}"
    return None
