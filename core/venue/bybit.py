"""BybitVenue: the ``Venue`` for Bybit v5 linear USDT perpetuals (and the simulator's Bybit face).

The parts, as the OKX venue's: ``bybit_client`` (ccxt for signed requests, error translation,
clock), ``bybit_stream`` (our websockets client, /v5/public/linear and /v5/private),
``bybit_parse`` (Bybit's fields -> domain events), ``bybit_history`` (backfill in 7-day windows,
every page, every execType) and ``bybit_lives`` (per-life close records from executions and
per-order closed PnL). This class wires them and is what the engine holds.

What Bybit is to perpdesk, in short: one-way or hedge mode, cross margin, quantities in coins (an
instrument's contract size is 1), fills from the ``execution`` topic (execId, execFee), funding
from Funding executions (the topic says "settled", the backfill books it), positions without an
id (the life key is symbol + leg + open time). Bybit's executions do not say which hedge leg they
moved; their order does (positionIdx 1 buy side, 2 sell side): the venue keeps each order's leg
from the order topic and its own placements, and looks an order it has not seen up by its id.
Not built yet: isolated margin, Partial TP/SL.
"""
from __future__ import annotations

import asyncio
import dataclasses
import functools
import secrets
import string
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

from loguru import logger

from core.events import (
    AccountSnapshot,
    Candle,
    FundingBill,
    FundingRate,
    FundingSignal,
    MalformedPush,
    MarkPrice,
    PlaceOrder,
    PositionHistoryRecord,
    PositionPush,
    StreamStatus,
)
from core.model import Fill, Instrument, Origin, PosSide, utc_from_ms
from core.money import ZERO, dec, dec_or_none, plain
from core.venue import bybit_parse as bp
from core.venue.base import (
    OUTCOME_UNKNOWN,
    CredentialsLike,
    ExchangeSettingsLike,
    RestingOrder,
    VenueCapabilities,
    VenueError,
    VenueErrorKind,
)
from core.venue.bybit_client import BybitClient
from core.venue.bybit_history import backfill
from core.venue.bybit_lives import lives
from core.venue.bybit_stream import BybitStream
from core.venue.ccxt_forms import attached_tp_sl, limit_price
from core.venue.okx_candles import parse_candle
from core.venue.okx_markets import Markets
from core.venue.okx_orders import lot
from core.venue.okx_parse import CONSOLE_PREFIX, STRATEGY_PREFIX, describe_error
from core.venue.registry import venue_entry
from core.venue.writes import send_write

BYBIT_WS = "wss://stream.bybit.com/v5"
BYBIT_WS_TESTNET = "wss://stream-testnet.bybit.com/v5"
KLINE_INTERVALS = {"1m": "1", "3m": "3", "5m": "5", "15m": "15", "30m": "30", "1H": "60", "2H": "120",
                   "4H": "240", "6H": "360", "12H": "720", "1D": "D"}
LOOKBACK = timedelta(days=7)  # history asked for when the caller gives no start
LIFE_LOOKBACK = timedelta(days=7)  # lives need their opening fills: read this much before ``since``
_ALNUM = string.ascii_letters + string.digits
REDUCE_ONLY_KEPT = 10_000  # reduce-only order ids remembered for their executions (oldest dropped)
LEGS_KEPT = 10_000  # hedge legs of orders remembered for their executions (oldest dropped)
LEG_LOOKUP_DELAYS = (0.2, 0.5, 1.0, 2.0, 5.0)  # an execution's order looked up by id (hedge mode)
POSITION_IDX = {PosSide.NET: 0, PosSide.LONG: 1, PosSide.SHORT: 2}


def new_link_id(origin: Origin) -> str:
    """orderLinkId that says who sent the order ('pds' strategy, 'pdc' console), 32 alphanumerics."""
    prefix = STRATEGY_PREFIX if origin is Origin.STRATEGY else CONSOLE_PREFIX
    return prefix + "".join(secrets.choice(_ALNUM) for _ in range(29))


def ws_base_url(url: str | None, testnet: bool) -> str:
    """http(s)://host:port -> ws(s)://host:port/v5; without a url, Bybit's live or testnet WS."""
    if not url:
        return BYBIT_WS_TESTNET if testnet else BYBIT_WS
    parts = urlsplit(url)
    return f"{'wss' if parts.scheme in ('https', 'wss') else 'ws'}://{parts.netloc}/v5"


def instrument_from_market(market: Mapping[str, Any]) -> Instrument:
    """ccxt bybit market -> Instrument from Bybit's raw strings: coins, so contract size 1."""
    info = market["info"]
    lot_filter, price_filter = info["lotSizeFilter"], info["priceFilter"]
    return Instrument(symbol=market["symbol"], inst_id=str(info["symbol"]), contract_size=Decimal(1),
                      lot_size=dec(lot_filter["qtyStep"]), min_size=dec(lot_filter["minOrderQty"]),
                      tick_size=dec(price_filter["tickSize"]), settle_ccy=str(info.get("settleCoin") or "USDT"),
                      base_ccy=str(info.get("baseCoin") or market.get("base") or ""))


class BybitMarkets(Markets):
    """The configured linear perpetuals, by perpdesk symbol and by Bybit symbol."""

    what = "linear perpetual"

    def listed(self, market: Mapping[str, Any]) -> bool:
        return bool(market.get("swap")) and bool(market.get("linear")) and isinstance(market.get("info"), dict)

    def instrument_of(self, market: Mapping[str, Any]) -> Instrument:
        return instrument_from_market(market)


class BybitVenue:
    """The exchange as the engine sees it: domain types in, domain types out."""

    history_window = timedelta(days=730)  # Bybit keeps two years of executions for a unified account
    # What this venue serves today: whole-position and attached TP/SL, cross margin, one-way and
    # hedge mode (an execution's leg is its order's positionIdx), funding every 8 h, coins.
    capabilities = VenueCapabilities("Bybit", isolated_margin=False, contracts_are_coins=True)

    def __init__(self, exchange: ExchangeSettingsLike, credentials: CredentialsLike | None) -> None:
        self.venue = str(exchange.venue)
        entry = venue_entry(self.venue)  # VenueError naming the supported venues
        if entry.embedded_sim and not exchange.url:
            raise VenueError(f'[exchange] venue "{self.venue}" needs the simulator\'s url (e.g. http://127.0.0.1:8765)',
                             VenueErrorKind.CONFIG)
        self.symbols: tuple[str, ...] = tuple(exchange.symbols)
        self.sandbox = bool(exchange.sandbox)
        self.url: str | None = exchange.url.rstrip("/") if exchange.url else None
        self._creds = (credentials.api_key, credentials.secret) if credentials is not None else None
        # venue "sim" with [sim] protocol = "bybit": the embedded simulator's Bybit face, demo keys
        self.rest = BybitClient(self.url, self.sandbox, self._creds, simulator=entry.embedded_sim)
        self.markets = BybitMarkets(self.symbols)
        self.account_uid = ""
        self._streams: list[BybitStream] = []
        self._closed = False
        self._connected = False
        # where parsed pushes go (set by start_streams; a test may feed on_push and read them here)
        self.sink: Callable[[object], None] = lambda _: None
        # Bybit's executions do not say whether their order was reduce-only: the ids (orderId, or
        # our own orderLinkId) of the reduce-only orders placed here or seen on the order topic
        self._reduce_only: dict[str, None] = {}
        # the hedge leg of each order (orderId and orderLinkId), from the order topic, our own
        # placements and look-ups: Bybit's executions carry no positionIdx
        self._legs: dict[str, PosSide] = {}
        self.hedge = False  # the account trades in hedge mode (a positionIdx 1 or 2 was seen)
        self._lookups: set[asyncio.Task[None]] = set()

    @property
    def instruments(self) -> dict[str, Instrument]:
        return self.markets.by_symbol

    @property
    def address(self) -> str:
        return self.rest.address

    @property
    def clock_offset_s(self) -> float:
        """This computer's clock minus Bybit's (s), measured at connect and on a time rejection.
        The engine warns at start when it is large and converts its own disconnect time with it,
        so a clock running ahead cannot start a backfill after the fills of the gap."""
        return self.rest.clock_offset_s

    @property
    def _ex(self) -> Any:
        return self.rest.ex

    # ------------------------------------------------------------------ lifecycle

    async def connect(self) -> None:
        """Load markets, resolve the configured symbols, prove the keys work, learn the account id."""
        if self._creds is None:
            raise VenueError("no API credentials for bybit: set PERPDESK_API_KEY and PERPDESK_API_SECRET",
                             VenueErrorKind.AUTH)
        if self._connected:
            return
        await self.rest.sync_clock()
        markets = await self.rest.call("loading markets", self._ex.load_markets())
        self.markets.resolve(markets, self.address)
        await self.fetch_balance()
        info = await self.rest.call("reading the API key", self._ex.privateGetV5UserQueryApi, retry=True)
        result = info.get("result") or {}
        self.account_uid = str(result.get("userIDInt64") or result.get("userID") or "")
        await self._learn_mode()
        self._connected = True

    async def _learn_mode(self) -> None:
        """Hedge or one-way: Bybit lists both legs of a symbol in hedge mode (flat or not)."""
        for inst in self.markets.by_symbol.values():
            result = await self._get("reading the position mode", "privateGetV5PositionList",
                                     {"category": "linear", "symbol": inst.inst_id})
            if any(int(i.get("positionIdx") or 0) != 0 for i in result.get("list") or ()):
                self.hedge = True
                return

    async def close(self) -> None:
        self._closed = True
        for task in list(self._lookups):
            task.cancel()
        await asyncio.gather(*(s.stop() for s in self._streams), return_exceptions=True)
        await self.rest.close()

    async def _get(self, what: str, method: str, params: dict[str, Any]) -> dict[str, Any]:
        fn = getattr(self._ex, method)
        answer: dict[str, Any] = await self.rest.call(what, lambda: fn(dict(params)), retry=True)
        return answer.get("result") or {}

    # ------------------------------------------------------------------ REST reads

    async def fetch_balance(self) -> AccountSnapshot:
        answer = await self.rest.call("reading the account balance", lambda: self._ex.privateGetV5AccountWalletBalance(
            {"accountType": "UNIFIED"}), retry=True)
        items = (answer.get("result") or {}).get("list") or [{}]
        ccy = self.markets.settle_ccy
        snap = bp.parse_wallet(items[0], ccy, int(answer.get("time") or 0))
        return snap or AccountSnapshot(equity=ZERO, available=ZERO, unrealized_pnl=ZERO, ccy=ccy,
                                       ts=utc_from_ms(int(answer.get("time") or 0)))

    async def fetch_positions(self) -> list[PositionPush]:
        result = await self._get("reading positions", "privateGetV5PositionList",
                                 {"category": "linear", "settleCoin": self.markets.settle_ccy, "limit": 200})
        by_id = self.markets.by_id
        return [bp.parse_position(i, by_id[i["symbol"]]) for i in result.get("list") or ()
                if i.get("symbol") in by_id]

    async def _backfill(self, since: datetime | None, *, closed_pnl: bool = False) -> Any:
        now = datetime.now(UTC) - timedelta(seconds=self.rest.clock_offset_s)
        start = max(since or now - LOOKBACK, now - self.history_window)
        try:
            got = await backfill(self._ex, self.markets.by_id, start, now + timedelta(seconds=5),
                                 closed_pnl=closed_pnl, legs=self._legs if self.hedge else None)
        except Exception as exc:
            if isinstance(exc, VenueError):
                raise
            raise self.rest.translate("reading the execution and closed-PnL history", exc) from None
        for f in got.fills:
            self._remember_leg(f.order_id, f.pos_side)
        return got

    async def fetch_fills(self, since: datetime | None) -> list[Fill]:
        return list((await self._backfill(since)).fills)

    async def fetch_funding_bills(self, since: datetime | None) -> list[FundingBill]:
        return list((await self._backfill(since)).funding)

    async def fetch_positions_history(self, since: datetime | None) -> list[PositionHistoryRecord]:
        """Per-life records (core.venue.bybit_lives) of lives updated since ``since``."""
        got = await self._backfill(since - LIFE_LOOKBACK if since is not None else None, closed_pnl=True)
        records = lives(got.fills, got.funding, got.closes)
        return [r for r in records if since is None or r.updated_at >= since]

    async def fetch_candles(self, symbol: str, bar: str = "1m", limit: int = 100) -> list[Candle]:
        inst = self.markets.instrument(symbol)
        interval = KLINE_INTERVALS.get(bar)
        if interval is None:
            raise VenueError(f"bar {bar!r} is not a Bybit kline interval ({', '.join(KLINE_INTERVALS)})",
                             VenueErrorKind.BAD_REQUEST)
        answer = await self.rest.call(f"reading {symbol} candles", lambda: self._ex.publicGetV5MarketKline(
            {"category": "linear", "symbol": inst.inst_id, "interval": interval, "limit": min(max(limit, 1), 1000)}),
            retry=True)
        rows = (answer.get("result") or {}).get("list") or []
        out = []
        for i, row in enumerate(rows):  # newest first; the newest is the bar still open
            out.append(parse_candle([*row[:6], row[6] if len(row) > 6 else "0", "0", "0" if i == 0 else "1"],
                                    inst, bar))
        return list(reversed(out))

    # ------------------------------------------------------------------ REST writes

    async def place_order(self, cmd: PlaceOrder, origin: Origin) -> str:
        inst = self.markets.instrument(cmd.symbol)
        leg = PosSide(cmd.pos_side or "net")
        size = lot(inst, cmd.contracts)
        link = new_link_id(origin)
        params: dict[str, Any] = {"orderLinkId": link}
        if leg is not PosSide.NET:  # hedge mode: the leg is the order's positionIdx
            params["positionIdx"] = POSITION_IDX[leg]
            self.hedge = True
        self._remember_leg(link, leg)
        if cmd.reduce_only:
            params["reduceOnly"] = True
            self._remember_reduce_only(link)
        params.update(attached_tp_sl(cmd))
        price = limit_price(cmd)
        return await self._send(f"placing {cmd.side.value} {plain(size)} {cmd.symbol}", inst, link,
                                lambda: self._ex.create_order(cmd.symbol, cmd.order_type, cmd.side.value,
                                                              plain(size), price, dict(params)))

    async def _send(self, what: str, inst: Instrument, link: str, send: Callable[[], Any]) -> str:
        """Send; a rate-limit refusal (10006: nothing executed) is re-sent after a short pause, as
        on OKX; when the outcome is unknown (5xx, timeout, broken connection) the order is looked
        up by its orderLinkId before saying anything."""
        try:
            reply = await send_write(self.rest.call, what, send)
        except VenueError as error:
            return await self._settle_unknown(inst, link, error)
        return str(reply.get("id") or link) if isinstance(reply, dict) else link

    async def _settle_unknown(self, inst: Instrument, link: str, error: VenueError) -> str:
        """After a failed send: the orderId if the order exists, else the failure (named)."""
        if error.kind not in OUTCOME_UNKNOWN:
            raise error
        for method in ("privateGetV5OrderRealtime", "privateGetV5OrderHistory"):
            try:
                found = await self._get("looking the order up", method, {
                    "category": "linear", "symbol": inst.inst_id, "orderLinkId": link})
            except VenueError as lookup:
                raise VenueError(f"{error}; could not check whether the order reached the exchange "
                                 f"({lookup}) — look at open orders and positions before retrying",
                                 error.kind) from None
            if found.get("list"):
                order_id = str(found["list"][0]["orderId"])
                logger.warning(f"ORDER CONFIRMED BY LOOKUP {order_id} ({link}) after: {error}")
                return order_id
        raise VenueError(f"{error}; the order was not placed (looked up by its client id) — nothing to "
                         "undo, try again", error.kind) from None

    async def cancel_order(self, symbol: str, order_id: str) -> None:
        self.markets.instrument(symbol)
        await self.rest.call(f"canceling order {order_id} on {symbol}", lambda: self._ex.cancel_order(order_id, symbol))

    async def close_position(self, symbol: str, pos_side: str = "net", contracts: Decimal | None = None,
                             origin: Origin = Origin.CONSOLE) -> str:
        """A reduce-only market order for ``contracts`` (capped at the open size) or all of it; in
        hedge mode on the ``pos_side`` leg (its positionIdx)."""
        inst = self.markets.instrument(symbol)
        leg = PosSide(pos_side or "net")
        result = await self._get(f"reading the {symbol} position", "privateGetV5PositionList",
                                 {"category": "linear", "symbol": inst.inst_id})
        pos = next((p for p in (bp.parse_position(i, inst) for i in result.get("list") or ()
                                if dec(i.get("size"), default=ZERO) != 0)
                    if leg is PosSide.NET or p.pos_side is leg), None)
        if pos is None or pos.contracts == 0:
            where = "" if leg is PosSide.NET else f" {leg.value}"
            raise VenueError(f"no open {symbol}{where} position to close", VenueErrorKind.NOT_FOUND)
        size = lot(inst, min(abs(contracts), abs(pos.contracts)) if contracts is not None else abs(pos.contracts))
        short = pos.pos_side is PosSide.SHORT or (pos.pos_side is PosSide.NET and pos.contracts < 0)
        side = "buy" if short else "sell"
        link = new_link_id(origin)
        self._remember_reduce_only(link)
        self._remember_leg(link, pos.pos_side)
        params: dict[str, Any] = {"orderLinkId": link, "reduceOnly": True}
        if pos.pos_side is not PosSide.NET:
            params["positionIdx"] = POSITION_IDX[pos.pos_side]
        return await self._send(f"closing {plain(size)} of {symbol}", inst, link, lambda: self._ex.create_order(
            symbol, "market", side, plain(size), None, dict(params)))

    async def _open(self, order_filter: str) -> list[dict[str, Any]]:
        result = await self._get("reading open orders", "privateGetV5OrderRealtime",
                                 {"category": "linear", "settleCoin": self.markets.settle_ccy,
                                  "orderFilter": order_filter, "limit": 50})
        return [i for i in result.get("list") or () if i.get("symbol") in self.markets.by_id]

    async def fetch_open_orders(self) -> list[RestingOrder]:
        return [RestingOrder(symbol=self.markets.by_id[i["symbol"]].symbol, order_id=str(i["orderId"]), trigger=False,
                             reduce_only=i.get("reduceOnly") is True, side=str(i.get("side") or "").lower(),
                             pos_side=bp.leg_of(i).value)
                for i in await self._open("Order")]

    async def fetch_open_triggers(self) -> list[RestingOrder]:
        """Bybit's trigger orders: the StopOrder filter (TakeProfit, StopLoss, conditional)."""
        out = []
        for i in await self._open("StopOrder"):
            tp, sl = dec_or_none(i.get("takeProfit")), dec_or_none(i.get("stopLoss"))
            out.append(RestingOrder(symbol=self.markets.by_id[i["symbol"]].symbol, order_id=str(i["orderId"]),
                                    trigger=True, reduce_only=i.get("reduceOnly") is True, pos_side=bp.leg_of(i).value,
                                    side=str(i.get("side") or "").lower(), take_profit=tp or None,
                                    stop_loss=sl or None, close_fraction="1" if i.get("tpslMode") == "Full" else ""))
        return out

    async def cancel_triggers(self, triggers: list[RestingOrder]) -> None:
        for a in triggers:
            await self.cancel_order(a.symbol, a.order_id)

    async def set_position_tp_sl(self, symbol: str, pos_side: str, take_profit: Decimal | None,
                                 stop_loss: Decimal | None) -> str:
        """The position's whole-size TP/SL (tpslMode Full). None keeps that leg as it is, as on
        OKX: the field is left out (Bybit reads "0" as "cancel it", which would drop the take-profit
        when only the stop moves)."""
        inst = self.markets.instrument(symbol)
        body = {"category": "linear", "symbol": inst.inst_id, "tpslMode": "Full",
                "positionIdx": POSITION_IDX[PosSide(pos_side or "net")]}
        if take_profit is not None:
            body["takeProfit"] = plain(take_profit)
        if stop_loss is not None:
            body["stopLoss"] = plain(stop_loss)
        await self.rest.call(f"setting the {symbol} TP/SL", lambda: self._ex.privatePostV5PositionTradingStop(body))
        algos = [a for a in await self.fetch_open_triggers()
                 if a.symbol == symbol and a.pos_side == PosSide(pos_side or "net").value]
        return algos[-1].order_id if algos else ""

    def _remember_leg(self, order_id: str, leg: PosSide) -> None:
        if order_id:
            self._legs[order_id] = leg
            if len(self._legs) > LEGS_KEPT:
                del self._legs[next(iter(self._legs))]

    def _remember_reduce_only(self, order_id: str) -> None:
        if order_id:
            self._reduce_only[order_id] = None
            if len(self._reduce_only) > REDUCE_ONLY_KEPT:
                del self._reduce_only[next(iter(self._reduce_only))]

    # ------------------------------------------------------------------ streams

    async def run_streams(self, sink: Callable[[object], None], symbols: list[str] | None = None, *,
                          candles: bool = True) -> None:
        """Public (tickers, and kline.1 when ``candles``) and private (order, execution, position,
        wallet) streams until close(). Each one-minute kline push becomes a Candle (open, then
        confirmed)."""
        self.sink = sink
        insts = [self.markets.instrument(s) for s in (symbols if symbols is not None else self.symbols)]
        base = ws_base_url(self.url, self.sandbox)
        topics = [f"tickers.{i.inst_id}" for i in insts] + ([f"kline.1.{i.inst_id}" for i in insts] if candles else [])
        public = BybitStream("public", f"{base}/public/linear", topics,
                             functools.partial(self.on_push, "public"), sink, clock=self.rest.exchange_time,
                             on_malformed=functools.partial(self._malformed, "public", ""))
        private = BybitStream("private", f"{base}/private", ["order", "execution", "position", "wallet"],
                              functools.partial(self.on_push, "private"), sink, credentials=self._creds,
                              clock=self.rest.exchange_time, resync_clock=self.rest.resync_clock_once,
                              on_malformed=functools.partial(self._malformed, "private", ""))
        self._streams = [public, private]
        if self._closed:
            return
        await asyncio.gather(*(s.run() for s in self._streams))

    def stream_status(self) -> list[StreamStatus]:
        return [StreamStatus(stream=s.name, state=s.state, latency_ms=s.latency_ms) for s in self._streams]

    def _malformed(self, stream: str, topic: str, reason: str) -> None:
        self.sink(MalformedPush(stream, topic, reason, datetime.now(UTC)))

    def on_push(self, stream: str, msg: dict[str, Any]) -> None:
        """Route one frame by topic; each item is parsed alone (a bad one is reported, not fatal)."""
        topic = str(msg.get("topic") or "")
        base = topic.split(".", 1)[0]
        if base == "kline":
            self._klines(stream, topic, msg)
            return
        data = msg.get("data")
        items = data if isinstance(data, list) else [data]
        for item in items:
            if not isinstance(item, dict):
                continue
            try:
                self._item(base, item, int(msg.get("ts") or msg.get("creationTime") or 0))
            except (KeyError, ValueError, TypeError, ArithmeticError, AttributeError) as exc:
                logger.warning(f"WS {stream} skipped a malformed {topic} push: {describe_error(exc)}")
                self._malformed(stream, topic, describe_error(exc))

    def _item(self, base: str, item: dict[str, Any], ts_ms: int) -> None:
        by_id = self.markets.by_id
        inst = by_id.get(str(item.get("symbol") or ""))
        if base == "wallet":
            snap = bp.parse_wallet(item, self.markets.settle_ccy, ts_ms)
            if snap is not None:
                self.sink(snap)
            return
        if inst is None:
            return
        if base == "execution":
            self._execution(item, inst, ts_ms)
        elif base == "order":
            if item.get("reduceOnly") is True:
                self._remember_reduce_only(str(item.get("orderId") or ""))
            leg = bp.leg_of(item)
            self.hedge = self.hedge or leg is not PosSide.NET
            self._remember_leg(str(item.get("orderId") or ""), leg)
            update = bp.parse_order(item, inst)
            if update is not None:
                self.sink(update)
        elif base == "position":
            push = bp.parse_position(item, inst)
            self.hedge = self.hedge or push.pos_side is not PosSide.NET
            self.sink(push)
        elif base == "tickers":
            self._ticker(item, inst, ts_ms)

    def _execution(self, item: dict[str, Any], inst: Instrument, ts_ms: int) -> None:
        """A trade execution is a Fill (reduce-only when its order is known to be); a Funding
        one says funding settled, and the engine fetches the funding rows now."""
        if bp.is_trade(item):
            fill = bp.parse_execution(item, inst)
            if fill.order_id in self._reduce_only or fill.client_order_id in self._reduce_only:
                fill = dataclasses.replace(fill, reduce_only=True)
            leg = self._legs.get(fill.order_id) or self._legs.get(fill.client_order_id)
            if leg is None and self.hedge:  # the execution came before its order: ask for the order
                task = asyncio.create_task(self._fill_after_lookup(fill, inst))
                self._lookups.add(task)
                task.add_done_callback(self._lookups.discard)
                return
            self.sink(dataclasses.replace(fill, pos_side=leg or PosSide.NET))
        elif bp.is_funding(item):
            self.sink(FundingSignal(inst.symbol, utc_from_ms(item.get("execTime") or ts_ms)))

    async def _fill_after_lookup(self, fill: Fill, inst: Instrument) -> None:
        """Hedge mode, an execution whose order this venue has not seen: its leg from
        /v5/order/realtime by orderId (then the order history), tried again on a transient
        failure; a fill whose order cannot be found is left to the backfill, with a warning."""
        for delay in (0.0, *LEG_LOOKUP_DELAYS):
            await asyncio.sleep(delay)
            leg = self._legs.get(fill.order_id)
            if leg is None:
                try:
                    leg = await self._order_leg(inst, fill.order_id)
                except VenueError as error:
                    logger.warning(f"ORDER LOOKUP {fill.order_id} for fill {fill.fill_id}: {error}")
                    continue
            if leg is not None:
                self._remember_leg(fill.order_id, leg)
                self.sink(dataclasses.replace(fill, pos_side=leg))
                return
        logger.warning(f"fill {fill.fill_id} of order {fill.order_id}: the order's hedge leg could not be "
                       "read; the fill is booked by the next backfill (reconnect or restart)")

    async def _order_leg(self, inst: Instrument, order_id: str) -> PosSide | None:
        for method in ("privateGetV5OrderRealtime", "privateGetV5OrderHistory"):
            found = await self._get("looking up an execution's order", method, {
                "category": "linear", "symbol": inst.inst_id, "orderId": order_id})
            for item in found.get("list") or ():
                if str(item.get("orderId")) == order_id:
                    return bp.leg_of(item)
        return None

    def _klines(self, stream: str, topic: str, msg: dict[str, Any]) -> None:
        """kline.1.{symbol}: each item a one-minute bar (public data: a bad one is only logged)."""
        parts = topic.split(".")
        inst = self.markets.by_id.get(parts[2]) if len(parts) == 3 else None
        if inst is None or parts[1] != "1":
            return
        for item in msg.get("data") or ():
            try:
                row = [str(item["start"]), item["open"], item["high"], item["low"], item["close"], item["volume"],
                       item.get("turnover") or "0", "0", "1" if item.get("confirm") is True else "0"]
                self.sink(parse_candle(row, inst, "1m"))
            except (KeyError, ValueError, TypeError, ArithmeticError, AttributeError) as exc:
                logger.warning(f"WS {stream} skipped a malformed {topic} push: {describe_error(exc)}")

    def _ticker(self, item: dict[str, Any], inst: Instrument, ts_ms: int) -> None:
        """A tickers snapshot or delta: only the fields it carries are news."""
        ts = utc_from_ms(ts_ms)
        if item.get("markPrice"):
            self.sink(MarkPrice(inst.symbol, dec(item["markPrice"]), ts))
        if item.get("fundingRate"):
            nxt = str(item.get("nextFundingTime") or "")
            self.sink(FundingRate(inst.symbol, dec(item["fundingRate"]),
                                   utc_from_ms(nxt) if nxt.isdigit() and nxt != "0" else None, ts))
