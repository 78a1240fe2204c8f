"""Orders to OKX: place, cancel, close; sent at most once, and never left unknown.

Why a module of its own: a write is the one call that must not be retried blindly. A rate-limit
refusal executed nothing and is re-sent; a 5xx, a timeout or a connection lost mid-request leaves
the order unknown, so it is looked up by the client order id before anything is said to the trader.
"""
from __future__ import annotations

import secrets
import string
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

from loguru import logger

from core.events import PlaceOrder
from core.model import Instrument, Origin
from core.money import ZERO, dec, plain, quantize_down
from core.venue import okx_parse as P
from core.venue.base import OUTCOME_UNKNOWN, VenueError, VenueErrorKind
from core.venue.ccxt_forms import attached_tp_sl, limit_price
from core.venue.okx_markets import Markets
from core.venue.okx_rest import OkxRest
from core.venue.writes import send_write

_ALNUM = string.ascii_letters + string.digits


def new_client_order_id(origin: Origin) -> str:
    """clOrdId that says who sent the order: 'pds' strategy, 'pdc' console; 32 alphanumerics."""
    prefix = P.STRATEGY_PREFIX if origin is Origin.STRATEGY else P.CONSOLE_PREFIX
    return prefix + "".join(secrets.choice(_ALNUM) for _ in range(29))


def lot(inst: Instrument, contracts: Decimal) -> Decimal:
    """``contracts`` rounded down to the lot; VenueError below the minimum order size."""
    size = quantize_down(abs(contracts), inst.lot_size)
    if size < inst.min_size or size <= 0:
        raise VenueError(f"order size {plain(contracts)} contracts of {inst.symbol} is below the minimum "
                         f"{plain(inst.min_size)} (lot {plain(inst.lot_size)}) — increase the size",
                         VenueErrorKind.REJECTED)
    return size


class OkxOrders:
    """Place, cancel and close through ccxt, with the send-once-then-look-up rule."""

    def __init__(self, rest: OkxRest, markets: Markets) -> None:
        self._rest = rest
        self._markets = markets

    async def place_order(self, cmd: PlaceOrder, origin: Origin) -> str:
        """Send an order (size in contracts, OKX sz); returns OKX's ordId.

        In hedge mode (pos_side long/short) OKX takes posSide instead of reduceOnly.
        """
        inst = self._markets.instrument(cmd.symbol)
        contracts = lot(inst, cmd.contracts)
        params: dict[str, Any] = {"clOrdId": new_client_order_id(origin)}
        if cmd.pos_side in ("long", "short"):
            params["posSide"] = cmd.pos_side
        elif cmd.reduce_only:
            params["reduceOnly"] = True
        params.update(attached_tp_sl(cmd))
        price = limit_price(cmd)
        return await self._send_order(
            f"placing {cmd.side.value} {plain(contracts)} contracts {cmd.symbol}", inst, params["clOrdId"],
            lambda: self._rest.ex.create_order(cmd.symbol, cmd.order_type, cmd.side.value, plain(contracts),
                                               price, dict(params)))

    async def _send_order(self, what: str, inst: Instrument, cl_id: str,
                          send: Callable[[], Awaitable[Any]]) -> str:
        """Send an order-creating request and return its ordId (or ``cl_id`` when the reply has none).

        Why the care: an order must never be sent twice, yet a trader must learn whether it went
        out. A rate-limit refusal (50011) means nothing was executed, so it is re-sent after a
        short pause. A 5xx, a timeout or a connection lost mid-request leaves it unknown: the
        order is looked up by its client id instead, and the answer (placed / not placed /
        could not tell) goes into the result.
        """
        try:
            reply = await send_write(self._rest.call, what, send)
        except VenueError as error:
            if error.kind not in OUTCOME_UNKNOWN:
                raise
            return await self._settle_unknown(error, inst, cl_id)
        return str(reply.get("id") or reply.get("ordId") or cl_id) if isinstance(reply, dict) else cl_id
        raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises

    async def _settle_unknown(self, error: VenueError, inst: Instrument, cl_id: str) -> str:
        """After a write whose outcome is unknown: the ordId if the order exists, else VenueError."""
        try:
            found = await self._find_client_order(inst, cl_id)
        except VenueError as lookup:
            raise VenueError(f"{error}; could not check whether the order reached the exchange "
                             f"({lookup}) — look at open orders and positions before retrying",
                             error.kind) from None
        if found is None:
            raise VenueError(f"{error}; the order was not placed (looked up by its client id) "
                             "— nothing to undo, try again", error.kind) from None
        logger.warning(f"ORDER CONFIRMED BY LOOKUP {found} ({cl_id}) after: {error}")
        return found

    async def _find_client_order(self, inst: Instrument, cl_id: str) -> str | None:
        """OKX's ordId of our order with client id ``cl_id``; None when the exchange has no such order."""
        try:
            resp = await self._rest.call("looking the order up", lambda: self._rest.ex.private_get_trade_order(
                {"instId": inst.inst_id, "clOrdId": cl_id}), retry=True)
        except VenueError as exc:
            if exc.kind is VenueErrorKind.NOT_FOUND:
                return None
            raise
        data = resp.get("data") or []
        return str(data[0].get("ordId") or cl_id) if data else None

    async def cancel_order(self, symbol: str, order_id: str) -> None:
        self._markets.instrument(symbol)
        await self._rest.call(f"canceling order {order_id} on {symbol}",
                              lambda: self._rest.ex.cancel_order(order_id, symbol))

    async def close_position(self, symbol: str, pos_side: str = "net", contracts: Decimal | None = None,
                             origin: Origin = Origin.CONSOLE) -> str:
        """Close ``contracts`` of a position with a reduce-only market order, or all of it.

        All -> POST /trade/close-position (the exchange sizes it, so nothing is left over); its
        reply has no ordId, so the clOrdId is returned. Partial -> a market order in the position's
        margin mode, capped at the open size; returns its ordId.
        """
        inst = self._markets.instrument(symbol)
        ex = self._rest.ex
        resp = await self._rest.call(f"reading the {symbol} position", lambda: ex.private_get_account_positions(
            {"instType": "SWAP", "instId": inst.inst_id}), retry=True)
        pos = next((i for i in resp.get("data") or ()
                    if str(i.get("posSide") or "net") == pos_side and dec(i.get("pos"), default=ZERO) != 0), None)
        if pos is None:
            raise VenueError(f"no open {symbol} {pos_side} position to close", VenueErrorKind.NOT_FOUND)
        open_size = dec(pos["pos"])
        mgn_mode = str(pos.get("mgnMode") or "cross")
        cl_id = new_client_order_id(origin)
        if contracts is None:
            body = {"instId": inst.inst_id, "mgnMode": mgn_mode, "clOrdId": cl_id, "autoCxl": True}
            if pos_side != "net":
                body["posSide"] = pos_side
            return await self._send_order(f"closing the {symbol} position", inst, cl_id,
                                          lambda: ex.private_post_trade_close_position(body))
        size = lot(inst, min(abs(contracts), abs(open_size)))
        side = "buy" if pos_side == "short" or (pos_side == "net" and open_size < 0) else "sell"
        params: dict[str, Any] = {"clOrdId": cl_id, "tdMode": mgn_mode}
        if pos_side == "net":
            params["reduceOnly"] = True
        else:
            params["posSide"] = pos_side
        return await self._send_order(
            f"closing {plain(size)} contracts of {symbol}", inst, cl_id,
            lambda: ex.create_order(symbol, "market", side, plain(size), None, dict(params)))
