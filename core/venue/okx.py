"""OkxVenue: OKX v5 through ccxt (async REST) plus our own WebSocket streams.

REST goes through ccxt so signing, sandbox headers and error codes follow one maintained
implementation; history calls use ccxt's implicit raw endpoints so OKX's own fields (category,
fillPnl, billId, subType) survive. Streams use ``okx_stream.OkxStream`` and ``okx_parse``.
Every failure a trader can act on leaves this module as one ``VenueError`` sentence.
"""
from __future__ import annotations

import asyncio
import difflib
import functools
import secrets
import socket
import string
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Protocol
from urllib.parse import urlsplit

import aiohttp
import ccxt.async_support as ccxt
import orjson
from loguru import logger

from core.events import (
    AccountSnapshot,
    FundingBill,
    PlaceOrder,
    PositionHistoryRecord,
    PositionPush,
    StreamStatus,
)
from core.model import Fill, Instrument, Origin, ms_from_utc
from core.money import ZERO, dec, plain, quantize_down
from core.venue import okx_parse as P
from core.venue.okx_stream import OkxStream

SIM_DEMO_CREDENTIALS = ("perpdesk-demo", "perpdesk-demo-secret", "perpdesk-demo")
OKX_WS = "wss://ws.okx.com:8443/ws/v5"
OKX_WS_SANDBOX = "wss://wspap.okx.com:8443/ws/v5"
_LOOPBACK = {"127.0.0.1", "localhost", "::1"}
_ALNUM = string.ascii_letters + string.digits
_PAGE = 100
READ_RETRY_DELAYS = (0.25, 0.5, 1.0)  # seconds before each retry of an idempotent read
RATE_LIMIT_RETRY_DELAYS = (0.5, 1.0)  # a write refused with 50011 was not executed: retry it
CLOCK_WARN_S = 2.0  # a clock this far off the exchange's is worth telling the trader


# Channels whose pushes are whole states, not changes (a mark price, an account balance, a
# position): of a burst read from the socket in one go, only the newest per instrument and leg is
# parsed, after the burst. OKX itself samples mark-price (every 200 ms at most) and a positions
# item carries the full position, so nothing is lost; orders (fills) are never coalesced, and
# the fills of a burst reach the engine before the position state that follows them.
_LATEST_ONLY = frozenset({"mark-price", "account", "positions"})


class VenueError(Exception):
    """One plain sentence: what failed and what to do about it.

    ``kind`` says why, for callers that react differently: "rate_limit" (refused, nothing
    executed), "unavailable" (the exchange answered with a 5xx), "timeout" (no answer in time),
    "unreachable" (no connection made: nothing was sent), "disconnected" (the connection broke
    mid-request), "clock" (request time rejected), "not_found" (no such order), or None.
    """

    def __init__(self, message: str, kind: str | None = None) -> None:
        super().__init__(message)
        self.kind = kind


class ExchangeSettingsLike(Protocol):
    """The attributes of core.config.ExchangeSettings this module reads (duck-typed on purpose)."""

    @property
    def venue(self) -> str: ...
    @property
    def sandbox(self) -> bool: ...
    @property
    def url(self) -> str | None: ...
    @property
    def symbols(self) -> tuple[str, ...]: ...


class CredentialsLike(Protocol):
    """The attributes of core.config.Credentials this module reads."""

    @property
    def api_key(self) -> str: ...
    @property
    def secret(self) -> str: ...
    @property
    def passphrase(self) -> str: ...


def new_client_order_id(origin: Origin) -> str:
    """clOrdId that says who sent the order: 'pds' strategy, 'pdc' console; 32 alphanumerics."""
    prefix = P.STRATEGY_PREFIX if origin is Origin.STRATEGY else P.CONSOLE_PREFIX
    return prefix + "".join(secrets.choice(_ALNUM) for _ in range(29))


def ws_base_url(url: str | None, sandbox: bool) -> str:
    """http(s)://host:port -> ws(s)://host:port/ws/v5; without a url, OKX's live or demo WS."""
    if not url:
        return OKX_WS_SANDBOX if sandbox else OKX_WS
    parts = urlsplit(url)
    scheme = "wss" if parts.scheme in ("https", "wss") else "ws"
    return f"{scheme}://{parts.netloc}/ws/v5"


def okx_message(exc: BaseException) -> str:
    """OKX's own words from a ccxt error ("okx {json body}"): sMsg (sCode) or msg (code)."""
    text = str(exc)
    brace = text.find("{")
    if brace >= 0:
        try:
            body = orjson.loads(text[brace:])
        except orjson.JSONDecodeError:
            body = None
        if isinstance(body, dict):
            for item in body.get("data") or ():
                if isinstance(item, dict) and str(item.get("sCode") or "0") != "0":
                    return f"{str(item.get('sMsg') or '').strip()} (OKX {item.get('sCode')})"
            return f"{str(body.get('msg') or '').strip()} (OKX {body.get('code')})"
    return text.removeprefix("okx ").strip()[:300]


class OkxVenue:
    """The exchange as the engine sees it: domain types in, domain types out."""

    def __init__(self, exchange: ExchangeSettingsLike, credentials: CredentialsLike | None) -> None:
        venue = str(exchange.venue)
        if venue not in ("okx", "sim"):
            raise VenueError(f'unsupported [exchange] venue "{venue}": use "sim" or "okx"')
        if venue == "sim" and not exchange.url:
            raise VenueError('[exchange] venue "sim" needs the simulator\'s url (e.g. http://127.0.0.1:8765)')
        self.symbols: tuple[str, ...] = tuple(exchange.symbols)
        self.sandbox = bool(exchange.sandbox)
        self.url: str | None = exchange.url.rstrip("/") if exchange.url else None
        if credentials is not None:
            self._creds: tuple[str, str, str] | None = (
                credentials.api_key, credentials.secret, credentials.passphrase)
        else:
            self._creds = SIM_DEMO_CREDENTIALS if venue == "sim" else None
        self.venue = venue
        self.instruments: dict[str, Instrument] = {}
        self._by_id: dict[str, Instrument] = {}
        self._algo_kinds: OrderedDict[str, str] = OrderedDict()
        self._latest: dict[tuple[str, str, str], dict[str, Any]] = {}  # see _LATEST_ONLY
        self._latest_scheduled = False
        self._streams: list[OkxStream] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._sink: Callable[[object], None] = lambda _: None
        self._closed = False
        self._clock_task: asyncio.Future[bool] | None = None
        self._ex = self._build_exchange()

    # ------------------------------------------------------------------ setup

    def _build_exchange(self) -> Any:
        """ccxt okx pointed at OKX, OKX demo, or a loopback simulator (okx-protocol.md order)."""
        loopback = bool(self.url) and (urlsplit(self.url).hostname or "") in _LOOPBACK
        config: dict[str, Any] = {
            "enableRateLimit": not loopback,
            "options": {"defaultType": "swap", "fetchMarkets": {"types": ["swap"]}},
        }
        if self._creds is not None:
            config.update(apiKey=self._creds[0], secret=self._creds[1], password=self._creds[2])
        ex = ccxt.okx(config)
        if self.sandbox or self.venue == "sim":  # the simulator's keys are demo keys
            ex.set_sandbox_mode(True)  # must precede url overrides: it copies urls['test'] over urls['api']
        ex.has["fetchCurrencies"] = False  # else load_markets calls private /asset/currencies
        if self.url:
            ex.urls["api"]["rest"] = self.url
        return ex

    @property
    def address(self) -> str:
        return self.url or str(self._ex.urls["api"]["rest"])

    async def _rest(self, what: str, call: Awaitable[Any] | Callable[[], Awaitable[Any]], *,
                    retry: bool = False) -> Any:
        """Await a ccxt call; translate its exceptions into one actionable VenueError.

        ``call`` may be a zero-argument factory: then a request refused for its timestamp is
        re-sent once after re-reading the exchange's clock, and with ``retry`` (idempotent reads
        only) a rate limit, 5xx, timeout or lost connection is retried with a short backoff, so a
        transient fault costs a backfill a second rather than a failed resync.
        """
        factory = call if callable(call) else None
        clock_synced = False
        attempt = 0
        while True:
            try:
                return await (factory() if factory is not None else call)  # type: ignore[misc]
            except ccxt.BaseError as exc:
                error = self._translate(what, exc)
                if factory is None:
                    raise error from None
                if error.kind == "clock" and not clock_synced:
                    clock_synced = True
                    if await self.sync_clock():
                        continue
                if retry and error.kind in ("rate_limit", "unavailable", "timeout", "unreachable",
                                            "disconnected") \
                        and attempt < len(READ_RETRY_DELAYS):
                    logger.warning(f"REST RETRY {what}: {error} (retry {attempt + 1} of "
                                   f"{len(READ_RETRY_DELAYS)} in {READ_RETRY_DELAYS[attempt]:g} s)")
                    await asyncio.sleep(READ_RETRY_DELAYS[attempt])
                    attempt += 1
                    continue
                raise error from None

    def _translate(self, what: str, exc: BaseException) -> VenueError:
        """The one VenueError sentence for a ccxt exception (see VenueError.kind)."""
        if isinstance(exc, ccxt.InvalidNonce):  # before NetworkError: ccxt files it under it
            return VenueError(
                f"the exchange rejected the request time while {what}: {okx_message(exc)} — this "
                f"computer's clock {self._clock_words()}; sync the system clock (NTP)", "clock")
        if isinstance(exc, ccxt.AuthenticationError):
            return VenueError(
                f"exchange rejected the API key while {what}: {okx_message(exc)} — "
                "check PERPDESK_API_KEY, PERPDESK_API_SECRET and PERPDESK_API_PASSPHRASE"
                + (" (demo keys need [exchange] sandbox = true)" if self.venue == "okx" else ""))
        if isinstance(exc, ccxt.InsufficientFunds):
            return VenueError(f"{what} rejected: insufficient margin — {okx_message(exc)}; "
                              "reduce the size or add margin")
        if isinstance(exc, ccxt.OrderNotFound):
            return VenueError(f"{what} failed: order not found (already filled or canceled?) — "
                              f"{okx_message(exc)}", "not_found")
        if isinstance(exc, ccxt.InvalidOrder):
            return VenueError(f"{what} rejected by the exchange: {okx_message(exc)}")
        if isinstance(exc, ccxt.NetworkError):
            transport = exc.__cause__ is not None  # ccxt raises transport failures `from` them
            if isinstance(exc, ccxt.RateLimitExceeded):
                return VenueError(f"{what} refused by the exchange's rate limit: {okx_message(exc)} "
                                  "— too many requests; wait a moment and retry", "rate_limit")
            if isinstance(exc, ccxt.RequestTimeout):
                said = (f"no answer within {self._ex.timeout / 1000:g} s" if transport
                        else okx_message(exc))
                return VenueError(f"{what}: the exchange at {self.address} did not answer in time "
                                  f"({said})", "timeout")
            if not transport and isinstance(exc, ccxt.ExchangeNotAvailable):
                return VenueError(f"{what} failed: the exchange is unavailable — {okx_message(exc)}; "
                                  "try again shortly", "unavailable")
            hint = ("is `perpdesk sim` running? check [exchange] url" if self.venue == "sim" or self.url
                    else "check the network and [exchange] url")
            refused = isinstance(exc.__cause__, (aiohttp.ClientConnectorError, socket.gaierror))
            return VenueError(f"cannot reach exchange at {self.address}: {_reason(exc)} — {hint}",
                              "unreachable" if refused or not transport else "disconnected")
        return VenueError(f"{what} failed: {okx_message(exc)}")

    # ------------------------------------------------------------------ clock

    @property
    def clock_offset_s(self) -> float:
        """This computer's clock minus the exchange's, in seconds (0 until measured)."""
        return float(self._ex.options.get("timeDifference") or 0) / 1000  # float ok: seconds

    def exchange_time(self) -> float:
        """Now on the exchange's clock (unix seconds): what requests and WS logins are signed with."""
        return time.time() - self.clock_offset_s

    def _clock_words(self) -> str:
        offset = self.clock_offset_s
        if abs(offset) < 0.5:
            return "differs from the exchange's by more than 30 s"
        return (f"is {abs(offset):.1f} s {'ahead of' if offset > 0 else 'behind'} the exchange's "
                "(the exchange accepts 30 s)")

    async def _resync_clock_once(self) -> bool:
        """sync_clock for the streams: three streams refused at once share one measurement."""
        if self._clock_task is None or self._clock_task.done():
            self._clock_task = asyncio.ensure_future(self.sync_clock())
        return await asyncio.shield(self._clock_task)

    async def sync_clock(self) -> bool:
        """Measure the exchange's clock (GET /public/time) and sign requests with it from now on.

        Why: OKX refuses a request whose timestamp is more than 30 s off its own clock (50102),
        and a laptop back from sleep or a VM without NTP easily drifts that far. ccxt's
        ``timeDifference`` option shifts the signing timestamp; our WS login uses the same offset.
        Returns False (and keeps the local clock) when the exchange's time cannot be read.
        """
        before = self.clock_offset_s
        try:
            await self._ex.load_time_difference()
        except ccxt.BaseError as exc:
            logger.warning(f"CLOCK exchange time unavailable ({okx_message(exc)[:120]}); "
                           "signing with this computer's clock")
            return False
        offset = self.clock_offset_s
        if abs(offset) >= CLOCK_WARN_S and abs(offset - before) >= 0.5:
            logger.warning(f"CLOCK this computer's clock is {abs(offset):.1f} s "
                           f"{'ahead of' if offset > 0 else 'behind'} the exchange's; requests are "
                           "signed with the exchange's time — sync the system clock (NTP)")
        return True

    async def connect(self) -> None:
        """Load markets, resolve the configured symbols, and prove the credentials work."""
        if self._creds is None:
            raise VenueError("no API credentials for okx: set PERPDESK_API_KEY, PERPDESK_API_SECRET "
                             "and PERPDESK_API_PASSPHRASE")
        await self.sync_clock()
        markets = await self._rest("loading markets", self._ex.load_markets())
        swaps = {s: m for s, m in markets.items() if m.get("swap") and isinstance(m.get("info"), dict)}
        instruments: dict[str, Instrument] = {}
        for symbol in self.symbols:
            market = swaps.get(symbol)
            if market is None:
                close = difflib.get_close_matches(symbol, list(swaps), n=3, cutoff=0.5)
                raise VenueError(
                    f'unknown symbol "{symbol}" in [exchange] symbols: {self.address} lists no such swap; '
                    + (f"close matches: {', '.join(close)}" if close else "use ccxt form like BTC/USDT:USDT"))
            instruments[symbol] = P.instrument_from_market(market)
        self.instruments = instruments
        self._by_id = {i.inst_id: i for i in instruments.values()}
        await self.fetch_balance()

    async def close(self) -> None:
        """Stop streams and background lookups; release ccxt's HTTP session."""
        self._closed = True
        await asyncio.gather(*(s.stop() for s in self._streams), return_exceptions=True)
        for task in list(self._tasks):
            task.cancel()
        await self._ex.close()

    def _instrument(self, symbol: str) -> Instrument:
        try:
            return self.instruments[symbol]
        except KeyError:
            raise VenueError(f'symbol "{symbol}" is not in [exchange] symbols '
                             f"({', '.join(self.symbols) or 'none'})") from None

    @property
    def _ccy(self) -> str:
        return next(iter(self.instruments.values())).settle_ccy if self.instruments else "USDT"

    # ------------------------------------------------------------------ REST reads

    async def fetch_balance(self) -> AccountSnapshot:
        resp = await self._rest("reading the account balance",
                                self._ex.private_get_account_balance, retry=True)
        data = resp.get("data") or [{}]
        return P.parse_account(data[0], self._ccy)

    async def fetch_positions(self) -> list[PositionPush]:
        """Open positions of the configured symbols (OKX's view, including pos 0 rows it sends)."""
        resp = await self._rest("reading positions",
                                lambda: self._ex.private_get_account_positions({"instType": "SWAP"}),
                                retry=True)
        return [P.parse_position(i, self._by_id[i["instId"]]) for i in resp.get("data") or ()
                if i.get("instId") in self._by_id]

    async def _pages(self, what: str, endpoint: Callable[[dict[str, str]], Awaitable[Any]],
                     params: dict[str, str], cursor: str, ts_key: str, since_ms: int | None,
                     after: str | None = None) -> list[dict[str, Any]]:
        """Newest-first OKX history, paged with ``after=<cursor of the oldest item>``.

        Stops when a page is short, older than ``since`` or the cursor stops moving; returns only
        items at or after ``since``, each once.

        A timestamp cursor (positions-history pages by uTime) is moved to the oldest item's time
        + 1 ms, not to its time: ``after`` means strictly older, so records that share the last
        item's millisecond (two positions closed by one sweep) would otherwise be skipped. The
        page that follows repeats the ones already read; they are dropped by content.
        """
        out: list[dict[str, Any]] = []
        seen: set[bytes] = set()
        for _ in range(1000):
            query = {**params, "limit": str(_PAGE)}
            if after:
                query["after"] = after
            page = (await self._rest(what, lambda: endpoint(query), retry=True)).get("data") or []
            for item in page:
                key = orjson.dumps(item, option=orjson.OPT_SORT_KEYS)
                if key not in seen:
                    seen.add(key)
                    out.append(item)
            if len(page) < _PAGE:
                break
            oldest = page[-1]
            nxt = str(oldest.get(cursor) or "")
            if cursor == ts_key and nxt.isdigit():
                nxt = str(int(nxt) + 1)
            if (since_ms is not None and int(oldest.get(ts_key) or 0) < since_ms) or not nxt or nxt == after:
                break
            after = nxt
        return [i for i in out if since_ms is None or int(i.get(ts_key) or 0) >= since_ms]

    async def fetch_fills(self, since: datetime | None) -> list[Fill]:
        """Fills since ``since`` (oldest first) from GET /trade/fills-history, OKX fields kept.

        fills-history has no algoId or category; for orders that are not ours the order itself
        is looked up once so a TP/SL/liquidation fill is not journaled as 'external'.
        """
        since_ms = ms_from_utc(since) if since else None
        params = {"instType": "SWAP"}
        if since_ms is not None:
            params["begin"] = str(since_ms)
        items = await self._pages("reading fills history", self._ex.private_get_trade_fills_history,
                                  params, "billId", "ts", since_ms)
        orders: dict[str, dict[str, Any]] = {}
        fills: dict[str, Fill] = {}
        for item in items:
            inst = self._by_id.get(item.get("instId"))
            if inst is None or not item.get("tradeId"):
                continue
            cl_id = str(item.get("clOrdId") or "")
            kind = None
            if not cl_id.startswith((P.CONSOLE_PREFIX, P.STRATEGY_PREFIX)) and P.fill_category(item) == "normal":
                order = orders.get(item["ordId"])
                if order is None:
                    order = orders[item["ordId"]] = await self._order_details(inst, str(item["ordId"]))
                item = {**item, **{k: order[k] for k in ("algoId", "category", "reduceOnly") if order.get(k)}}
                if item.get("algoId"):
                    kind = await self.algo_kind(str(item["algoId"]))
            fill = P.parse_fill_history(item, inst, kind)
            fills.setdefault(fill.fill_id, fill)
        return sorted(fills.values(), key=lambda f: (f.ts, f.fill_id))

    async def _order_details(self, inst: Instrument, order_id: str) -> dict[str, Any]:
        try:
            resp = await self._rest("reading an order", lambda: self._ex.private_get_trade_order(
                {"instId": inst.inst_id, "ordId": order_id}), retry=True)
        except VenueError as exc:
            logger.warning(f"order {order_id} details unavailable, origin stays external: {exc}")
            return {}
        data = resp.get("data") or [{}]
        return dict(data[0])

    async def fetch_positions_history(self, since: datetime | None) -> list[PositionHistoryRecord]:
        """Closed/partially closed positions (OKX's realized truth), oldest update first."""
        since_ms = ms_from_utc(since) if since else None
        items = await self._pages("reading positions history",
                                  self._ex.private_get_account_positions_history,
                                  {"instType": "SWAP"}, "uTime", "uTime", since_ms)
        recs = [P.parse_position_history(i, self._by_id[i["instId"]]) for i in items
                if i.get("instId") in self._by_id]
        return sorted(recs, key=lambda r: (r.updated_at, r.position_key))

    async def fetch_funding_bills(self, since: datetime | None) -> list[FundingBill]:
        """Funding bills (type 8) since ``since``, oldest first.

        /account/bills covers 7 days; older history is in /bills-archive (3 months), read only
        when ``since`` reaches further back (or is None).
        """
        since_ms = ms_from_utc(since) if since else None
        params = {"instType": "SWAP", "type": "8"}
        if since_ms is not None:
            params["begin"] = str(since_ms)
        items = await self._pages("reading funding bills", self._ex.private_get_account_bills,
                                  params, "billId", "ts", since_ms)
        week_ago = datetime.now(UTC) - timedelta(days=6, hours=12)
        if since is None or since < week_ago:
            items += await self._pages("reading archived funding bills",
                                       self._ex.private_get_account_bills_archive,
                                       params, "billId", "ts", since_ms)
        bills: dict[str, FundingBill] = {}
        for item in items:
            inst = self._by_id.get(item.get("instId"))
            if inst is not None and str(item.get("type") or "8") == "8":
                bill = P.parse_funding_bill(item, inst)
                bills.setdefault(bill.bill_id, bill)
        return sorted(bills.values(), key=lambda b: (b.ts, b.bill_id))

    async def algo_kind(self, algo_id: str) -> str | None:
        """'tp' or 'sl' for an algo order: remembered from orders-algo pushes, else asked via REST."""
        if algo_id in self._algo_kinds:
            return self._algo_kinds[algo_id]
        queries: list[tuple[Callable[[dict[str, str]], Awaitable[Any]], dict[str, str]]] = [
            (self._ex.private_get_trade_order_algo, {"algoId": algo_id}),
            (self._ex.private_get_trade_orders_algo_history, {"ordType": "conditional", "algoId": algo_id}),
            (self._ex.private_get_trade_orders_algo_history, {"ordType": "oco", "algoId": algo_id}),
        ]
        for endpoint, query in queries:
            try:
                data = (await self._rest("reading an algo order", lambda: endpoint(query),
                                         retry=True)).get("data") or []
            except VenueError as exc:
                logger.debug(f"algo {algo_id}: {exc}")
                continue
            kind = P.algo_kind_of(data[0]) if data else None
            if kind is not None:
                self._remember_algo(algo_id, kind)
                return kind
        return None

    def _remember_algo(self, algo_id: str, kind: str) -> None:
        self._algo_kinds[algo_id] = kind
        if len(self._algo_kinds) > 10_000:
            self._algo_kinds.popitem(last=False)

    # ------------------------------------------------------------------ REST writes

    async def place_order(self, cmd: PlaceOrder, origin: Origin) -> str:
        """Send an order (size in contracts, OKX sz); returns OKX's ordId.

        In hedge mode (pos_side long/short) OKX takes posSide instead of reduceOnly.
        """
        inst = self._instrument(cmd.symbol)
        contracts = self._lot(inst, cmd.contracts)
        params: dict[str, Any] = {"clOrdId": new_client_order_id(origin)}
        if cmd.pos_side in ("long", "short"):
            params["posSide"] = cmd.pos_side
        elif cmd.reduce_only:
            params["reduceOnly"] = True
        if cmd.take_profit is not None:
            params["takeProfit"] = {"triggerPrice": plain(cmd.take_profit)}
        if cmd.stop_loss is not None:
            params["stopLoss"] = {"triggerPrice": plain(cmd.stop_loss)}
        if cmd.order_type == "limit" and (cmd.price is None or cmd.price <= 0):
            raise VenueError(f"limit order on {cmd.symbol} needs a positive price")
        price = plain(cmd.price) if cmd.order_type == "limit" and cmd.price is not None else None
        return await self._send_order(
            f"placing {cmd.side.value} {plain(contracts)} contracts {cmd.symbol}", inst, params["clOrdId"],
            lambda: self._ex.create_order(cmd.symbol, cmd.order_type, cmd.side.value, plain(contracts), price,
                                          dict(params)))

    async def _send_order(self, what: str, inst: Instrument, cl_id: str,
                          send: Callable[[], Awaitable[Any]]) -> str:
        """Send an order-creating request and return its ordId (or ``cl_id`` when the reply has none).

        Why the care: an order must never be sent twice, yet a trader must learn whether it went
        out. A rate-limit refusal (50011) means nothing was executed, so it is re-sent after a
        short pause. A 5xx, a timeout or a connection lost mid-request leaves it unknown: the
        order is looked up by its client id instead, and the answer (placed / not placed /
        could not tell) goes into the result.
        """
        for attempt in range(len(RATE_LIMIT_RETRY_DELAYS) + 1):
            try:
                reply = await self._rest(what, send)
                return str(reply.get("id") or reply.get("ordId") or cl_id) if isinstance(reply, dict) else cl_id
            except VenueError as error:
                if error.kind == "rate_limit" and attempt < len(RATE_LIMIT_RETRY_DELAYS):
                    delay = RATE_LIMIT_RETRY_DELAYS[attempt]
                    logger.warning(f"REST RETRY {what}: rate limited, nothing executed; re-sending in {delay:g} s")
                    await asyncio.sleep(delay)
                    continue
                if error.kind not in ("unavailable", "timeout", "disconnected"):
                    raise
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
        raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises

    async def _find_client_order(self, inst: Instrument, cl_id: str) -> str | None:
        """OKX's ordId of our order with client id ``cl_id``; None when the exchange has no such order."""
        try:
            resp = await self._rest("looking the order up", lambda: self._ex.private_get_trade_order(
                {"instId": inst.inst_id, "clOrdId": cl_id}), retry=True)
        except VenueError as exc:
            if exc.kind == "not_found":
                return None
            raise
        data = resp.get("data") or []
        return str(data[0].get("ordId") or cl_id) if data else None

    @staticmethod
    def _lot(inst: Instrument, contracts: Decimal) -> Decimal:
        size = quantize_down(abs(contracts), inst.lot_size)
        if size < inst.min_size or size <= 0:
            raise VenueError(f"order size {plain(contracts)} contracts of {inst.symbol} is below the minimum "
                             f"{plain(inst.min_size)} (lot {plain(inst.lot_size)}) — increase the size")
        return size

    async def cancel_order(self, symbol: str, order_id: str) -> None:
        self._instrument(symbol)
        await self._rest(f"canceling order {order_id} on {symbol}", lambda: self._ex.cancel_order(order_id, symbol))

    async def close_position(self, symbol: str, pos_side: str = "net", contracts: Decimal | None = None,
                             origin: Origin = Origin.CONSOLE) -> str:
        """Close ``contracts`` of a position with a reduce-only market order, or all of it.

        All -> POST /trade/close-position (the exchange sizes it, so nothing is left over); its
        reply has no ordId, so the clOrdId is returned. Partial -> a market order in the position's
        margin mode, capped at the open size; returns its ordId.
        """
        inst = self._instrument(symbol)
        resp = await self._rest(f"reading the {symbol} position", lambda: self._ex.private_get_account_positions(
            {"instType": "SWAP", "instId": inst.inst_id}), retry=True)
        pos = next((i for i in resp.get("data") or ()
                    if str(i.get("posSide") or "net") == pos_side and dec(i.get("pos"), default=ZERO) != 0), None)
        if pos is None:
            raise VenueError(f"no open {symbol} {pos_side} position to close")
        open_size = dec(pos["pos"])
        mgn_mode = str(pos.get("mgnMode") or "cross")
        cl_id = new_client_order_id(origin)
        if contracts is None:
            body = {"instId": inst.inst_id, "mgnMode": mgn_mode, "clOrdId": cl_id, "autoCxl": True}
            if pos_side != "net":
                body["posSide"] = pos_side
            return await self._send_order(f"closing the {symbol} position", inst, cl_id,
                                          lambda: self._ex.private_post_trade_close_position(body))
        size = self._lot(inst, min(abs(contracts), abs(open_size)))
        side = "buy" if pos_side == "short" or (pos_side == "net" and open_size < 0) else "sell"
        params: dict[str, Any] = {"clOrdId": cl_id, "tdMode": mgn_mode}
        if pos_side == "net":
            params["reduceOnly"] = True
        else:
            params["posSide"] = pos_side
        return await self._send_order(
            f"closing {plain(size)} contracts of {symbol}", inst, cl_id,
            lambda: self._ex.create_order(symbol, "market", side, plain(size), None, dict(params)))

    # ------------------------------------------------------------------ streams

    async def run_streams(self, sink: Callable[[object], None], symbols: list[str] | None = None) -> None:
        """Run public, private and business streams until ``close()``, reconnecting with backoff.

        ``sink`` gets Fill, OrderUpdate, PositionPush, AccountSnapshot, MarkPrice, StreamStatus,
        plus okx_parse.FundingSignal (funding settled: fetch bills now) and FundingRate.
        StreamStatus: a CONNECTED following a DISCONNECTED of the same stream means "resync now";
        repeated CONNECTED with message "latency" only refresh latency_ms.
        """
        self._sink = sink
        insts = [self._instrument(s) for s in (symbols if symbols is not None else self.symbols)]
        base = ws_base_url(self.url, self.sandbox)
        public = [{"channel": ch, "instId": i.inst_id} for i in insts for ch in ("mark-price", "funding-rate")]
        private = [{"channel": "positions", "instType": "ANY"}, {"channel": "orders", "instType": "SWAP"},
                   {"channel": "account"}, {"channel": "balance_and_position"}]
        business = [{"channel": "orders-algo", "instType": "SWAP"}]
        def stream(name: str, subs: list[dict[str, str]], creds: tuple[str, str, str] | None) -> OkxStream:
            return OkxStream(name, f"{base}/{name}", subs, functools.partial(self._on_push, stream=name), sink,
                             credentials=creds, clock=self.exchange_time, resync_clock=self._resync_clock_once,
                             on_malformed=lambda reason: self._malformed(name, "", reason))

        self._streams = [stream("public", public, None), stream("private", private, self._creds),
                         stream("business", business, self._creds)]
        if self._closed:
            return
        await asyncio.gather(*(s.run() for s in self._streams))

    def _malformed(self, stream: str, channel: str, reason: str) -> None:
        self._sink(P.MalformedPush(stream, channel, reason, datetime.now(UTC)))

    def _on_push(self, msg: dict[str, Any], stream: str = "private") -> None:
        """Route one push by arg.channel; unknown instruments and channels are ignored.

        Each item is parsed on its own: an item missing a field or carrying a number OKX would
        never send is skipped with one log line (and a MalformedPush, so the engine resyncs), and
        the push's other items still go through.
        """
        channel = str(msg["arg"].get("channel") or "")
        latest_only = channel in _LATEST_ONLY
        for item in msg["data"]:
            if latest_only and isinstance(item, dict):
                key = f'{item.get("instId") or ""}|{item.get("posSide") or ""}'
                self._latest[(channel, key, stream)] = item
                if not self._latest_scheduled:
                    self._latest_scheduled = True
                    asyncio.get_running_loop().call_soon(self._emit_latest)
            else:
                self._item(stream, channel, item)

    def _emit_latest(self) -> None:
        """Parse and hand over the newest mark / account push of each key seen since the last call
        (one pass of the event loop: everything read from the socket in one go)."""
        self._latest_scheduled = False
        latest, self._latest = self._latest, {}
        for (channel, _, stream), item in latest.items():
            self._item(stream, channel, item)

    def _item(self, stream: str, channel: str, item: Any) -> None:
        try:
            self._on_item(channel, item)
        except (KeyError, ValueError, TypeError, ArithmeticError, AttributeError) as exc:
            what = f"missing field {exc}" if isinstance(exc, KeyError) else f"{type(exc).__name__}: {exc}"
            ident = (item.get("tradeId") or item.get("ordId") or item.get("instId") or "?"
                     if isinstance(item, dict) else "?")
            logger.warning(f"WS {stream} skipped a malformed {channel} push ({ident}): {what}")
            self._malformed(stream, channel, what)

    def _on_item(self, channel: str, item: dict[str, Any]) -> None:
        by_id, sink = self._by_id, self._sink
        if channel == "orders":
            inst = by_id.get(item.get("instId"))
            if inst is None:
                return
            algo_id = item.get("algoId")
            if (algo_id and item.get("tradeId") and algo_id not in self._algo_kinds
                    and P.algo_kind_of(item) is None and (item.get("category") or "normal") == "normal"):
                self._spawn(self._emit_after_algo_lookup(item, inst, algo_id))
                return
            update, fill = P.parse_order_push(item, inst, self._algo_kinds)
            if fill is not None:
                sink(fill)
            if update is not None:
                sink(update)
        elif channel == "mark-price":
            if (inst := by_id.get(item.get("instId"))) is not None:
                sink(P.parse_mark_price(item, inst))
        elif channel == "positions":
            if (inst := by_id.get(item.get("instId"))) is not None:
                sink(P.parse_position(item, inst))
        elif channel == "account":
            sink(P.parse_account(item, self._ccy))
        elif channel == "balance_and_position":
            for signal in P.parse_funding_signals(item, by_id):
                sink(signal)
        elif channel == "funding-rate":
            if (inst := by_id.get(item.get("instId"))) is not None:
                sink(P.parse_funding_rate(item, inst))
        elif channel == "orders-algo":
            kind = P.algo_kind_of(item)
            if kind is not None and item.get("algoId"):
                self._remember_algo(str(item["algoId"]), kind)

    def _spawn(self, coro: Awaitable[None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _emit_after_algo_lookup(self, item: dict[str, Any], inst: Instrument, algo_id: str) -> None:
        """A TP/SL fill whose kind is not known yet: ask REST once, then emit it classified."""
        await self.algo_kind(algo_id)
        update, fill = P.parse_order_push(item, inst, self._algo_kinds)
        if fill is not None:
            self._sink(fill)
        if update is not None:
            self._sink(update)

    def stream_status(self) -> list[StreamStatus]:
        """Current state of each stream (for a header refresh without waiting for a change)."""
        return [StreamStatus(stream=s.name, state=s.state, latency_ms=s.latency_ms) for s in self._streams]


def _reason(exc: BaseException) -> str:
    """The transport reason inside a ccxt NetworkError, without ccxt's method+url preamble."""
    text = str(exc).removeprefix("okx ").strip()
    cause = exc.__cause__ or exc.__context__
    if cause is not None and str(cause):
        return str(cause)[:200]
    return text[:200] or type(exc).__name__
