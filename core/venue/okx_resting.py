"""What rests at OKX: open orders and algo orders, canceling them, and moving a position's TP/SL.

Why a module of its own: a halt and the kill switch must see everything still live at the exchange
(the engine keeps no order book of its own, and an order placed by another app counts too), and
moving a stop is a cancel-and-replace of algo orders, not an order placement. Reads are paged and
retried (idempotent); cancels of something already gone count as done.

TP/SL move: OKX's amend-algos is not used; the position's reduce-only TP/SL algos are canceled and
one ``closeFraction = "1"`` algo with the new triggers replaces them (it closes the whole position
whatever its size when it fires). If placing the new one fails, the old triggers are put back.
"""
from __future__ import annotations

import asyncio
import functools
from decimal import Decimal
from typing import Any

from loguru import logger

from core.model import Origin
from core.money import ZERO, dec, plain
from core.venue.base import RestingOrder, VenueError, VenueErrorKind
from core.venue.okx_markets import Markets
from core.venue.okx_orders import new_client_order_id
from core.venue.okx_rest import OkxRest

PAGE = 100
CANCEL_ALGOS_BATCH = 10  # OKX accepts at most 10 algo orders per cancel-algos request
TPSL_TYPES = ("conditional", "oco")
GONE_CODES = ("51400", "51401", "51402", "51603", "51503")  # already canceled / filled / not found


def _opt(value: Any) -> Decimal | None:
    d = dec(value, default=ZERO) if value not in (None, "") else None
    return d if d is not None and d > 0 else None


class OkxResting:
    """Open orders and algos of the configured swaps; cancel them; set a position's TP/SL."""

    def __init__(self, rest: OkxRest, markets: Markets) -> None:
        self._rest = rest
        self._markets = markets

    async def _pending(self, what: str, endpoint: Any, params: dict[str, str],
                       id_key: str) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        after = ""
        for _ in range(100):
            query = {**params, "limit": str(PAGE)}
            if after:
                query["after"] = after
            page = (await self._rest.call(what, functools.partial(endpoint, query), retry=True)).get("data") or []
            out.extend(page)
            if len(page) < PAGE or not page or str(page[-1].get(id_key)) == after:
                break
            after = str(page[-1].get(id_key))
        by_id = self._markets.by_id
        return [i for i in out if i.get("instId") in by_id]

    async def fetch_open_orders(self) -> list[RestingOrder]:
        items = await self._pending("reading open orders", self._rest.ex.private_get_trade_orders_pending,
                                    {"instType": "SWAP"}, "ordId")
        by_id = self._markets.by_id
        return [RestingOrder(by_id[i["instId"]].symbol, str(i["ordId"]), False,
                             str(i.get("reduceOnly")) == "true", str(i.get("posSide") or "net"),
                             str(i.get("side") or "")) for i in items]

    async def fetch_open_algos(self) -> list[RestingOrder]:
        """Live algo orders: TP/SL (conditional, oco) and plain triggers."""
        ex = self._rest.ex
        items: list[dict[str, Any]] = []
        for kinds in ("conditional,oco", "trigger"):
            items += await self._pending("reading open algo orders", ex.private_get_trade_orders_algo_pending,
                                         {"instType": "SWAP", "ordType": kinds}, "algoId")
        by_id = self._markets.by_id
        seen: set[str] = set()
        out = []
        for i in items:
            algo_id = str(i["algoId"])
            if algo_id in seen:
                continue
            seen.add(algo_id)
            out.append(RestingOrder(by_id[i["instId"]].symbol, algo_id, True,
                                    str(i.get("reduceOnly")) == "true", str(i.get("posSide") or "net"),
                                    str(i.get("side") or ""), _opt(i.get("tpTriggerPx")),
                                    _opt(i.get("slTriggerPx")), str(i.get("closeFraction") or "")))
        return out

    async def cancel_algos(self, algos: list[RestingOrder]) -> None:
        """Cancel ``algos`` (10 per request); one that is no longer live counts as canceled."""
        ex = self._rest.ex
        reqs = [{"algoId": a.order_id, "instId": self._markets.instrument(a.symbol).inst_id} for a in algos]
        for start in range(0, len(reqs), CANCEL_ALGOS_BATCH):
            batch = reqs[start:start + CANCEL_ALGOS_BATCH]
            try:
                await self._rest.call(f"canceling {len(batch)} algo orders",
                                      functools.partial(ex.private_post_trade_cancel_algos, batch))
            except VenueError as exc:
                if not any(code in str(exc) for code in GONE_CODES) and exc.kind is not VenueErrorKind.NOT_FOUND:
                    raise
                logger.info(f"cancel algos: some were no longer live ({exc})")

    async def _position(self, symbol: str, pos_side: str) -> dict[str, Any]:
        inst = self._markets.instrument(symbol)
        resp = await self._rest.call(f"reading the {symbol} position", lambda: self._rest.ex.private_get_account_positions(
            {"instType": "SWAP", "instId": inst.inst_id}), retry=True)
        pos: dict[str, Any] | None = next((i for i in resp.get("data") or ()
                    if str(i.get("posSide") or "net") == pos_side and dec(i.get("pos"), default=ZERO) != 0), None)
        if pos is None:
            raise VenueError(f"no open {symbol} {pos_side} position to set a TP/SL on", VenueErrorKind.NOT_FOUND)
        return pos

    async def set_position_tp_sl(self, symbol: str, pos_side: str, take_profit: Decimal | None,
                                 stop_loss: Decimal | None) -> str:
        """Set or move the TP/SL of a position (None keeps that leg as it is); returns the new algoId."""
        inst = self._markets.instrument(symbol)
        pos = await self._position(symbol, pos_side)
        size = dec(pos["pos"])
        long = pos_side == "long" or (pos_side == "net" and size > 0)
        old = [a for a in await self.fetch_open_algos()
               if a.symbol == symbol and a.pos_side == pos_side and a.reduce_only
               and (a.take_profit is not None or a.stop_loss is not None)]
        tp = take_profit if take_profit is not None else next((a.take_profit for a in old if a.take_profit), None)
        sl = stop_loss if stop_loss is not None else next((a.stop_loss for a in old if a.stop_loss), None)
        if tp is None and sl is None:
            raise VenueError(f"no TP or SL given for {symbol} {pos_side}", VenueErrorKind.BAD_REQUEST)
        for name, price in (("take profit", tp), ("stop loss", sl)):
            if price is not None and price <= 0:
                raise VenueError(f"{name} must be a positive price, got {plain(price)}", VenueErrorKind.BAD_REQUEST)
        if old:
            await self.cancel_algos(old)
        try:
            return await self._place_tp_sl(inst.inst_id, symbol, pos, pos_side, long, tp, sl)
        except VenueError as exc:
            if old:
                await self._restore(inst.inst_id, symbol, pos, pos_side, long, old)
            raise VenueError(f"{exc} — the previous TP/SL was put back" if old else str(exc), exc.kind) from None

    async def _place_tp_sl(self, inst_id: str, symbol: str, pos: dict[str, Any], pos_side: str, long: bool,
                           tp: Decimal | None, sl: Decimal | None) -> str:
        body: dict[str, Any] = {
            "instId": inst_id, "tdMode": str(pos.get("mgnMode") or "cross"), "side": "sell" if long else "buy",
            "ordType": "oco" if tp is not None and sl is not None else "conditional",
            "closeFraction": "1", "algoClOrdId": new_client_order_id(Origin.CONSOLE),
        }
        if pos_side == "net":
            body["reduceOnly"] = True
        else:
            body["posSide"] = pos_side
        if tp is not None:
            body.update(tpTriggerPx=plain(tp), tpOrdPx="-1", tpTriggerPxType="last")
        if sl is not None:
            body.update(slTriggerPx=plain(sl), slOrdPx="-1", slTriggerPxType="last")
        reply = await self._rest.call(f"setting the TP/SL of {symbol}",
                                      lambda: self._rest.ex.private_post_trade_order_algo(body))
        data = reply.get("data") or [{}]
        return str(data[0].get("algoId") or body["algoClOrdId"])

    async def _restore(self, inst_id: str, symbol: str, pos: dict[str, Any], pos_side: str, long: bool,
                       old: list[RestingOrder]) -> None:
        results = await asyncio.gather(
            *(self._place_tp_sl(inst_id, symbol, pos, pos_side, long, a.take_profit, a.stop_loss) for a in old),
            return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                logger.error(f"TP/SL of {symbol} {pos_side} could not be put back: {result}")
