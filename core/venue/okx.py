"""OkxVenue: the ``Venue`` for OKX v5 (and the simulator that speaks it).

The parts, one idea each: ``okx_rest`` (ccxt client, error translation, exchange clock),
``okx_markets`` (configured swaps), ``okx_history`` (REST history and algo kinds), ``okx_orders``
(writes), ``okx_push`` (push routing) over ``okx_stream`` (connections) and ``okx_parse`` (pure
OKX dict -> domain type functions). This class wires them and is what the engine holds.
"""
from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Protocol
from urllib.parse import urlsplit

from core.events import (
    AccountSnapshot,
    Candle,
    FundingBill,
    PlaceOrder,
    PositionHistoryRecord,
    PositionPush,
    StreamStatus,
)
from core.model import Fill, Instrument, Origin
from core.settings.demo import DEMO_CREDENTIALS
from core.venue import okx_parse as P
from core.venue.base import (
    CredentialsLike,
    ExchangeSettingsLike,
    RestingOrder,
    VenueCapabilities,
    VenueError,
    VenueErrorKind,
)
from core.venue.okx_candles import OkxCandles
from core.venue.okx_history import OkxHistory, parse_each
from core.venue.okx_markets import Markets
from core.venue.okx_orders import OkxOrders, new_client_order_id
from core.venue.okx_push import PushRouter, Sink
from core.venue.okx_rest import OkxRest, okx_message
from core.venue.okx_resting import OkxResting
from core.venue.okx_stream import OkxStream
from core.venue.registry import venue_entry

__all__ = ["OkxVenue", "VenueError", "new_client_order_id", "okx_message", "ws_base_url"]

OKX_WS = "wss://ws.okx.com:8443/ws/v5"
OKX_WS_SANDBOX = "wss://wspap.okx.com:8443/ws/v5"


class OkxCredentialsLike(CredentialsLike, Protocol):
    """OKX's keys come with a passphrase."""

    @property
    def passphrase(self) -> str: ...


def ws_base_url(url: str | None, sandbox: bool) -> str:
    """http(s)://host:port -> ws(s)://host:port/ws/v5; without a url, OKX's live or demo WS."""
    if not url:
        return OKX_WS_SANDBOX if sandbox else OKX_WS
    parts = urlsplit(url)
    scheme = "wss" if parts.scheme in ("https", "wss") else "ws"
    return f"{scheme}://{parts.netloc}/ws/v5"


class OkxVenue:
    """The exchange as the engine sees it: domain types in, domain types out."""

    # How far back fills-history, positions-history and bills-archive answer (OKX: 3 months);
    # reconcile reads no journal older than this.
    history_window = timedelta(days=90)
    # OKX: TP/SL algos on a position and attached to an order, cross and isolated, net and
    # long/short mode, funding every 8 h, contract sizes per instrument (ctVal).
    capabilities = VenueCapabilities("OKX")

    def __init__(self, exchange: ExchangeSettingsLike, credentials: OkxCredentialsLike | None) -> None:
        venue = str(exchange.venue)
        entry = venue_entry(venue)  # VenueError naming the supported venues
        if entry.embedded_sim and not exchange.url:
            raise VenueError(f'[exchange] venue "{venue}" needs the simulator\'s url (e.g. http://127.0.0.1:8765)',
                             VenueErrorKind.CONFIG)
        self.venue = venue
        self.symbols: tuple[str, ...] = tuple(exchange.symbols)
        self.sandbox = bool(exchange.sandbox)
        self.url: str | None = exchange.url.rstrip("/") if exchange.url else None
        if credentials is not None:
            self._creds: tuple[str, str, str] | None = (
                credentials.api_key, credentials.secret, credentials.passphrase)
        else:
            self._creds = DEMO_CREDENTIALS if entry.demo_account else None
        # Demo keys (OKX demo trading, and the simulator's, which are demo keys too) are only
        # accepted with x-simulated-trading: 1; without it OKX answers 50101.
        self.demo = self.sandbox or entry.demo_account
        self.rest = OkxRest(self.url, self.sandbox, self.demo, self._creds, simulator=entry.embedded_sim)
        self.markets = Markets(self.symbols)
        self.history = OkxHistory(self.rest, self.markets)
        self.orders = OkxOrders(self.rest, self.markets)
        self.resting = OkxResting(self.rest, self.markets)
        self.candles = OkxCandles(self.rest)
        self.router = PushRouter(self.markets, self.history, self._spawn)
        self._streams: list[OkxStream] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False
        self._connected = False
        self.account_uid = ""

    # ------------------------------------------------------------------ the parts, as before

    @property
    def instruments(self) -> dict[str, Instrument]:
        return self.markets.by_symbol

    @property
    def address(self) -> str:
        return self.rest.address

    @property
    def clock_offset_s(self) -> float:
        return self.rest.clock_offset_s

    def exchange_time(self) -> float:
        return self.rest.exchange_time()

    async def sync_clock(self) -> bool:
        return await self.rest.sync_clock()

    # ------------------------------------------------------------------ lifecycle

    async def connect(self) -> None:
        """Load markets, resolve the configured symbols, prove the credentials work and learn the
        account's uid (``account_uid``). Done once: a second call returns at once."""
        if self._creds is None:
            raise VenueError("no API credentials for okx: set PERPDESK_API_KEY, PERPDESK_API_SECRET "
                             "and PERPDESK_API_PASSPHRASE", VenueErrorKind.AUTH)
        if self._connected:  # the runner connects first to check the journal's account
            return
        await self.rest.sync_clock()
        markets = await self.rest.call("loading markets", self.rest.ex.load_markets())
        self.markets.resolve(markets, self.address)
        await self.fetch_balance()
        resp = await self.rest.call("reading the account config",
                                    self.rest.ex.private_get_account_config, retry=True)
        self.account_uid = str(((resp.get("data") or [{}])[0] or {}).get("uid") or "")
        self._connected = True

    async def close(self) -> None:
        """Stop streams and background lookups; release ccxt's HTTP session."""
        self._closed = True
        await asyncio.gather(*(s.stop() for s in self._streams), return_exceptions=True)
        for task in list(self._tasks):
            task.cancel()
        await self.rest.close()

    def _spawn(self, coro: Awaitable[None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ------------------------------------------------------------------ REST reads

    async def fetch_balance(self) -> AccountSnapshot:
        resp = await self.rest.call("reading the account balance",
                                    self.rest.ex.private_get_account_balance, retry=True)
        data = resp.get("data") or [{}]
        ccy = self.markets.settle_ccy
        return P.parse_account(data[0], ccy) or P.empty_account(ccy, data[0])

    async def fetch_positions(self) -> list[PositionPush]:
        """Open positions of the configured symbols (OKX's view, including pos 0 rows it sends)."""
        resp = await self.rest.call("reading positions",
                                    lambda: self.rest.ex.private_get_account_positions({"instType": "SWAP"}),
                                    retry=True)
        by_id = self.markets.by_id
        return parse_each("positions", resp.get("data") or (),
                          lambda i: P.parse_position(i, by_id[i["instId"]]) if i.get("instId") in by_id else None)

    async def fetch_fills(self, since: datetime | None) -> list[Fill]:
        return await self.history.fetch_fills(since)

    async def fetch_positions_history(self, since: datetime | None) -> list[PositionHistoryRecord]:
        return await self.history.fetch_positions_history(since)

    async def fetch_funding_bills(self, since: datetime | None) -> list[FundingBill]:
        return await self.history.fetch_funding_bills(since)

    async def fetch_candles(self, symbol: str, bar: str = "1m", limit: int = 100) -> list[Candle]:
        """The newest ``limit`` ``bar`` candles of ``symbol`` (open bar included), oldest first."""
        inst = self.markets.instrument(symbol)
        try:
            return await self.candles.fetch(inst, bar, limit)
        except ValueError as exc:
            raise VenueError(str(exc), VenueErrorKind.BAD_REQUEST) from None

    async def algo_kind(self, algo_id: str) -> str | None:
        return await self.history.algo_kind(algo_id)

    # ------------------------------------------------------------------ REST writes

    async def place_order(self, cmd: PlaceOrder, origin: Origin) -> str:
        return await self.orders.place_order(cmd, origin)

    async def cancel_order(self, symbol: str, order_id: str) -> None:
        await self.orders.cancel_order(symbol, order_id)

    async def close_position(self, symbol: str, pos_side: str = "net", contracts: Decimal | None = None,
                             origin: Origin = Origin.CONSOLE) -> str:
        return await self.orders.close_position(symbol, pos_side, contracts, origin)

    async def fetch_open_orders(self) -> list[RestingOrder]:
        return await self.resting.fetch_open_orders()

    async def fetch_open_triggers(self) -> list[RestingOrder]:
        """OKX's trigger orders are its algo orders (TP/SL, oco, trigger)."""
        return await self.resting.fetch_open_algos()

    async def cancel_triggers(self, triggers: list[RestingOrder]) -> None:
        await self.resting.cancel_algos(triggers)

    async def set_position_tp_sl(self, symbol: str, pos_side: str, take_profit: Decimal | None,
                                 stop_loss: Decimal | None) -> str:
        return await self.resting.set_position_tp_sl(symbol, pos_side, take_profit, stop_loss)

    # ------------------------------------------------------------------ streams

    async def run_streams(self, sink: Callable[[object], None], symbols: list[str] | None = None, *,
                          candles: bool = True) -> None:
        """Run public, private and business streams until ``close()``, reconnecting with backoff.

        ``sink`` gets Fill, OrderUpdate, PositionPush, AccountSnapshot, MarkPrice, StreamStatus,
        plus FundingSignal (funding settled: fetch bills now), FundingRate and MalformedPush, and
        the one-minute Candle of each symbol (business stream, channel candle1m) when ``candles``:
        only a strategy reads them, and 50 symbols' open bars are ~100 pushes a second to parse.
        StreamStatus: a CONNECTED following a DISCONNECTED of the same stream means "resync now";
        repeated CONNECTED with message "latency" only refresh latency_ms.
        """
        self.router.sink = sink
        insts = [self.markets.instrument(s) for s in (symbols if symbols is not None else self.symbols)]
        public = [{"channel": ch, "instId": i.inst_id} for i in insts for ch in ("mark-price", "funding-rate")]
        private = [{"channel": "positions", "instType": "ANY"}, {"channel": "orders", "instType": "SWAP"},
                   {"channel": "account"}, {"channel": "balance_and_position"}]
        business = [{"channel": "orders-algo", "instType": "SWAP"},
                    *({"channel": "candle1m", "instId": i.inst_id} for i in insts if candles)]
        self._streams = [self._stream("public", public, None, sink), self._stream("private", private, self._creds, sink),
                         self._stream("business", business, self._creds, sink)]
        if self._closed:
            return
        await asyncio.gather(*(s.run() for s in self._streams))

    def _stream(self, name: str, subs: list[dict[str, str]], creds: tuple[str, str, str] | None,
                sink: Sink) -> OkxStream:
        base = ws_base_url(self.url, self.sandbox)
        return OkxStream(name, f"{base}/{name}", subs, functools.partial(self.router.on_push, stream=name), sink,
                         credentials=creds, clock=self.rest.exchange_time, resync_clock=self.rest.resync_clock_once,
                         on_malformed=functools.partial(self.router.malformed, name, ""))

    def stream_status(self) -> list[StreamStatus]:
        """Current state of each stream (for a header refresh without waiting for a change)."""
        return [StreamStatus(stream=s.name, state=s.state, latency_ms=s.latency_ms) for s in self._streams]
