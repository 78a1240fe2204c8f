"""What every ccxt-backed venue writes and reads the same way, whichever the exchange.

ccxt's unified order parameters (an attached take-profit / stop-loss is
``{"takeProfit": {"triggerPrice": ...}, "stopLoss": {...}}``, a limit order's price a plain string)
and its error text (``"<exchange id> {the exchange's JSON body}"``) are the same for OKX and Bybit;
what the body's fields mean is each exchange's (core.venue.okx_rest, core.venue.bybit_client).
"""
from __future__ import annotations

from typing import Any

import orjson

from core.events import PlaceOrder
from core.money import plain
from core.venue.base import VenueError, VenueErrorKind


def error_body(exc: BaseException) -> Any:
    """The exchange's JSON body inside a ccxt error's text, None when there is none."""
    text = str(exc)
    brace = text.find("{")
    if brace < 0:
        return None
    try:
        return orjson.loads(text[brace:])
    except orjson.JSONDecodeError:
        return None


def attached_tp_sl(cmd: PlaceOrder) -> dict[str, Any]:
    """ccxt's params for the take-profit and stop-loss attached to an entry (none: {})."""
    params: dict[str, Any] = {}
    if cmd.take_profit is not None:
        params["takeProfit"] = {"triggerPrice": plain(cmd.take_profit)}
    if cmd.stop_loss is not None:
        params["stopLoss"] = {"triggerPrice": plain(cmd.stop_loss)}
    return params


def limit_price(cmd: PlaceOrder) -> str | None:
    """The price sent with an order: a limit order's (it must be positive), None for a market one."""
    if cmd.order_type == "limit" and (cmd.price is None or cmd.price <= 0):
        raise VenueError(f"limit order on {cmd.symbol} needs a positive price", VenueErrorKind.BAD_REQUEST)
    return plain(cmd.price) if cmd.order_type == "limit" and cmd.price is not None else None
