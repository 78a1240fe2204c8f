"""OkxVenue end to end against the OKX v5 simulator: ccxt REST, our streams, reconnects, errors."""
from __future__ import annotations

import asyncio
import socket
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest

from core.events import AccountSnapshot, LinkState, PlaceOrder, PositionPush, StreamStatus
from core.model import Fill, OrderSide, OrderState, OrderUpdate, Origin
from core.venue import FundingSignal, OkxVenue, VenueError
from tests.helpers.engine_helpers import control

try:
    from core.sim.server import SimServer
except ImportError:  # pragma: no cover - only while core/sim is being written
    SimServer = None  # type: ignore[assignment,misc]

pytestmark = [pytest.mark.skipif(SimServer is None, reason="core.sim.server is not importable yet"),
              pytest.mark.timeout(60)]

D = Decimal
BTC = "BTC/USDT:USDT"


@dataclass(frozen=True)
class Exchange:
    url: str | None
    venue: str = "sim"
    sandbox: bool = False
    symbols: tuple[str, ...] = (BTC,)


@dataclass(frozen=True)
class Creds:
    api_key: str
    secret: str
    passphrase: str


class Events:
    """Collects sink output; ``until`` waits for the first event matching a predicate."""

    def __init__(self) -> None:
        self.items: list[object] = []
        self._changed = asyncio.Event()

    def __call__(self, event: object) -> None:
        self.items.append(event)
        self._changed.set()

    async def until(self, pred: Callable[[Any], bool], start: int = 0, timeout: float = 10.0) -> Any:
        async def scan() -> Any:
            seen = start
            while True:
                for ev in self.items[seen:]:
                    if pred(ev):
                        return ev
                seen = len(self.items)
                self._changed.clear()
                await self._changed.wait()
        return await asyncio.wait_for(scan(), timeout)

    def status(self, stream: str, state: LinkState) -> Callable[[Any], bool]:
        return lambda e: isinstance(e, StreamStatus) and e.stream == stream and e.state is state


@pytest.fixture
async def sim() -> AsyncIterator[Any]:
    srv = SimServer(host="127.0.0.1", port=0, seed=1, speed=0)
    await srv.start()
    yield srv
    await srv.stop()


async def streaming(venue: OkxVenue, events: Events, *, candles: bool = True) -> asyncio.Task[None]:
    """Connect ``venue`` and run its three streams into ``events`` until each is connected."""
    await venue.connect()
    task = asyncio.create_task(venue.run_streams(events, [BTC], candles=candles))
    for stream in ("public", "private", "business"):
        await events.until(events.status(stream, LinkState.CONNECTED))
    return task


@pytest.fixture
async def live(sim: Any) -> AsyncIterator[tuple[OkxVenue, Events, Any]]:
    """A connected venue with all three streams subscribed."""
    venue = OkxVenue(Exchange(sim.url), None)
    events = Events()
    task = await streaming(venue, events)
    yield venue, events, sim
    await venue.close()
    await asyncio.wait_for(task, 5)


async def test_connect_loads_instruments_from_okx_strings(sim: Any) -> None:
    venue = OkxVenue(Exchange(sim.url), None)
    try:
        await venue.connect()
        inst = venue.instruments[BTC]
        assert inst.inst_id == "BTC-USDT-SWAP" and inst.contract_size == D("0.01")
        assert inst.lot_size == D("0.01") and inst.min_size == D("0.01") and inst.tick_size == D("0.1")
        assert type(inst.contract_size) is Decimal
        account = await venue.fetch_balance()
        assert isinstance(account, AccountSnapshot) and account.equity > 0 and account.ccy == "USDT"
    finally:
        await venue.close()


async def test_fill_arrives_on_the_stream_and_in_history(live: tuple[OkxVenue, Events, Any]) -> None:
    venue, events, sim = live
    await control(sim, "/sim/v1/price", {"instId": "BTC-USDT-SWAP", "px": "60000"})
    mark = len(events.items)
    order_id = await venue.place_order(PlaceOrder(BTC, OrderSide.BUY, D("3")), Origin.CONSOLE)
    fill: Fill = await events.until(lambda e: isinstance(e, Fill) and e.order_id == order_id, mark)
    assert fill.client_order_id.startswith("pdc") and fill.origin is Origin.CONSOLE
    assert fill.contracts == D("3") and fill.coins == D("0.03")
    assert fill.fee > 0 and fill.fee == fill.coins * fill.price * D("0.0005")  # taker fee paid = cost
    update: OrderUpdate = await events.until(lambda e: isinstance(e, OrderUpdate) and e.order_id == order_id, mark)
    assert update.state is OrderState.FILLED
    pos: PositionPush = await events.until(lambda e: isinstance(e, PositionPush) and e.contracts == D("3"), mark)
    assert pos.entry_price == fill.price
    history = await venue.fetch_fills(None)
    assert [f for f in history if f.fill_id == fill.fill_id] == [fill]
    assert [p.contracts for p in await venue.fetch_positions()] == [D("3")]


async def test_partial_then_full_close(live: tuple[OkxVenue, Events, Any]) -> None:
    venue, events, _ = live
    await venue.place_order(PlaceOrder(BTC, OrderSide.SELL, D("4")), Origin.STRATEGY)
    mark = len(events.items)
    closed_id = await venue.close_position(BTC, "net", D("1.5"))
    fill = await events.until(lambda e: isinstance(e, Fill) and e.order_id == closed_id, mark)
    assert fill.side is OrderSide.BUY and fill.reduce_only and fill.contracts == D("1.5")
    assert [p.contracts for p in await venue.fetch_positions()] == [D("-2.5")]
    await venue.close_position(BTC, "net", None)
    await events.until(lambda e: isinstance(e, PositionPush) and e.contracts == 0, mark)
    full_close = await events.until(lambda e: isinstance(e, Fill) and e.contracts == D("2.5"), mark)
    assert full_close.origin is Origin.CONSOLE  # close-position carries our clOrdId, not "external"
    records = await venue.fetch_positions_history(None)
    assert len(records) == 1 and records[0].closed_contracts == D("4") and records[0].direction == "short"
    with pytest.raises(VenueError, match="no open BTC/USDT:USDT net position"):
        await venue.close_position(BTC)


async def test_take_profit_fill_is_classified_tp(live: tuple[OkxVenue, Events, Any]) -> None:
    venue, events, sim = live
    await control(sim, "/sim/v1/price", {"instId": "BTC-USDT-SWAP", "px": "60000"})
    await venue.place_order(PlaceOrder(BTC, OrderSide.BUY, D("2"), take_profit=D("61000"), stop_loss=D("59000")),
                            Origin.STRATEGY)
    mark = len(events.items)
    await control(sim, "/sim/v1/price", {"instId": "BTC-USDT-SWAP", "px": "61000"})
    fill = await events.until(lambda e: isinstance(e, Fill) and e.algo_id != "", mark)
    assert fill.origin is Origin.TP and fill.side is OrderSide.SELL and fill.fill_pnl and fill.fill_pnl > 0
    assert await venue.algo_kind(fill.algo_id) == "tp"
    backfilled = {f.fill_id: f for f in await venue.fetch_fills(None)}
    assert backfilled[fill.fill_id].origin is Origin.TP


async def test_funding_settlement_signal_and_bill(live: tuple[OkxVenue, Events, Any]) -> None:
    venue, events, sim = live
    await control(sim, "/sim/v1/price", {"instId": "BTC-USDT-SWAP", "px": "60000"})
    await venue.place_order(PlaceOrder(BTC, OrderSide.BUY, D("5")), Origin.CONSOLE)
    mark = len(events.items)
    await control(sim, "/sim/v1/funding", {"instId": "BTC-USDT-SWAP", "rate": "0.0001"})
    signal = await events.until(lambda e: isinstance(e, FundingSignal), mark)
    assert signal.symbol == BTC
    bills = await venue.fetch_funding_bills(None)
    assert len(bills) == 1
    assert bills[0].amount == D("-0.3") and bills[0].position_contracts == D("5")  # 0.05 BTC x 60000 x 0.0001
    assert await venue.fetch_funding_bills(bills[0].ts) == bills


async def test_drop_reconnects_and_streams_resume(live: tuple[OkxVenue, Events, Any]) -> None:
    venue, events, sim = live
    mark = len(events.items)
    await control(sim, "/sim/v1/drop", {})
    down = await events.until(events.status("private", LinkState.DISCONNECTED), mark)
    up_at = events.items.index(down)
    await events.until(events.status("private", LinkState.CONNECTED), up_at)
    await events.until(events.status("public", LinkState.CONNECTED), mark)
    await events.until(events.status("business", LinkState.CONNECTED), mark)
    after = len(events.items)
    order_id = await venue.place_order(PlaceOrder(BTC, OrderSide.BUY, D("1")), Origin.CONSOLE)
    fill = await events.until(lambda e: isinstance(e, Fill) and e.order_id == order_id, after)
    assert (fill.side, fill.contracts, fill.origin) == ("buy", D("1"), Origin.CONSOLE)  # pushed after the reconnect


async def test_order_rejection_carries_okx_message(live: tuple[OkxVenue, Events, Any]) -> None:
    venue, _, _ = live
    with pytest.raises(VenueError, match="insufficient margin") as err:
        await venue.place_order(PlaceOrder(BTC, OrderSide.BUY, D("100000")), Origin.CONSOLE)
    assert "OKX 51008" in str(err.value)
    with pytest.raises(VenueError, match="below the minimum 0.01"):
        await venue.place_order(PlaceOrder(BTC, OrderSide.BUY, D("0.004")), Origin.CONSOLE)


async def test_bad_credentials(sim: Any) -> None:
    venue = OkxVenue(Exchange(sim.url), Creds("perpdesk-demo", "wrong-secret", "perpdesk-demo"))
    try:
        with pytest.raises(VenueError, match="exchange rejected the API key.*PERPDESK_API_KEY"):
            await venue.connect()
    finally:
        await venue.close()


@pytest.mark.parametrize("sandbox", [False, True])
async def test_bad_keys_hint_names_sandbox_only_where_it_applies(sim: Any, sandbox: bool) -> None:
    exchange = Exchange(sim.url, venue="okx", sandbox=sandbox)
    venue = OkxVenue(exchange, Creds("perpdesk-demo", "wrong-secret", "perpdesk-demo"))
    try:
        with pytest.raises(VenueError, match="exchange rejected the API key") as err:
            await venue.connect()
    finally:
        await venue.close()
    message = str(err.value)
    assert ("demo keys need [exchange] sandbox = true" in message) is (not sandbox)
    assert ("live keys need sandbox = false" in message) is sandbox


async def test_unknown_symbol_lists_close_matches(sim: Any) -> None:
    venue = OkxVenue(Exchange(sim.url, symbols=("BTC/USDT:USD",)), None)
    try:
        with pytest.raises(VenueError, match='unknown symbol "BTC/USDT:USD".*close matches: BTC/USDT:USDT'):
            await venue.connect()
    finally:
        await venue.close()


async def test_unreachable_exchange_names_the_address() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    venue = OkxVenue(Exchange(url), None)
    try:
        with pytest.raises(VenueError, match=f"cannot reach exchange at {url}: .*perpdesk sim"):
            await venue.connect()
    finally:
        await venue.close()


async def test_stream_measures_ping_latency(sim: Any) -> None:
    from core.venue.okx_stream import OkxStream

    events = Events()
    stream = OkxStream("public", f"{sim.ws_url}/public", [{"channel": "mark-price", "instId": "BTC-USDT-SWAP"}],
                       lambda msg: events(msg), events, ping_interval=0.2)
    task = asyncio.create_task(stream.run())
    try:
        status = await events.until(lambda e: isinstance(e, StreamStatus) and e.message == "latency")
        assert status.state is LinkState.CONNECTED and status.latency_ms is not None and status.latency_ms >= 0
        assert stream.latency_ms == status.latency_ms
    finally:
        await stream.stop()
        await asyncio.wait_for(task, 5)
    assert stream.state is LinkState.DISCONNECTED


async def test_a_stream_to_the_simulator_on_loopback_negotiates_no_compression(sim: Any) -> None:
    """The simulator would agree to permessage-deflate; on loopback the stream does not offer it,
    so no frame is deflated and inflated for nothing."""
    from core.venue.okx_stream import OkxStream

    events = Events()
    stream = OkxStream("public", f"{sim.ws_url}/public", [{"channel": "mark-price", "instId": "BTC-USDT-SWAP"}],
                       lambda msg: None, events)
    task = asyncio.create_task(stream.run())
    try:
        await events.until(events.status("public", LinkState.CONNECTED))
        assert stream.extensions == ()
    finally:
        await stream.stop()
        await asyncio.wait_for(task, 5)


async def test_stream_without_pong_reconnects() -> None:
    """A server that acks subscriptions but never answers 'ping' is treated as dead."""
    from websockets.asyncio.server import serve

    from core.venue.okx_stream import OkxStream

    connections = 0

    async def silent(ws: Any) -> None:
        nonlocal connections
        connections += 1
        async for raw in ws:
            if raw != "ping":
                await ws.send('{"event":"subscribe","arg":{"channel":"mark-price","instId":"X"},"connId":"1"}')

    async with serve(silent, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        events = Events()
        stream = OkxStream("public", f"ws://127.0.0.1:{port}/ws/v5/public",
                           [{"channel": "mark-price", "instId": "X"}], lambda msg: None, events,
                           ping_interval=0.1, pong_timeout=0.2, backoff_initial=0.05)
        task = asyncio.create_task(stream.run())
        try:
            down = await events.until(events.status("public", LinkState.DISCONNECTED))
            assert "no pong within 0.2 s" in down.message
            await events.until(events.status("public", LinkState.CONNECTED), events.items.index(down))
            assert connections >= 2
        finally:
            await stream.stop()
            await asyncio.wait_for(task, 5)


async def test_positions_history_since_reads_only_the_records_since(
        sim: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The close confirmer asks positions-history "since" once per close: the request carries
    OKX's ``before`` so the exchange answers with the records updated since, not a page of the
    account's 100 newest lives for us to decode and drop (issue 25). Same records either way."""
    from datetime import timedelta

    venue = OkxVenue(Exchange(sim.url), None)
    await venue.connect()
    try:
        for _ in range(3):
            await venue.place_order(PlaceOrder(BTC, OrderSide.BUY, D("1")), Origin.CONSOLE)
            await venue.close_position(BTC, "net", None)
            await asyncio.sleep(0.01)
        old = await venue.fetch_positions_history(None)
        assert len(old) == 3
        since = old[-1].updated_at + timedelta(milliseconds=1)
        await asyncio.sleep(0.01)
        await venue.place_order(PlaceOrder(BTC, OrderSide.SELL, D("2")), Origin.CONSOLE)
        await venue.close_position(BTC, "net", None)
        served: list[int] = []
        ex = venue.rest.ex  # the one the history reader calls
        real = ex.private_get_account_positions_history

        async def counted(params: dict[str, str]) -> Any:
            resp = await real(params)
            served.append(len(resp["data"]))
            return resp

        monkeypatch.setattr(ex, "private_get_account_positions_history", counted)
        got = await venue.fetch_positions_history(since)
        assert [(r.direction, r.closed_contracts) for r in got] == [("short", D("2"))]
        assert served == [1]  # the exchange sent only the record since, not all four
        everything = await venue.fetch_positions_history(None)
        assert [r for r in everything if r.updated_at >= since] == got and served[1:] == [4]
    finally:
        await venue.close()


async def _history_pages(items: list[dict[str, str]], queries: list[dict[str, str]] | None = None,
                         since_ms: int | None = None) -> list[dict[str, Any]]:
    """The adapter's positions-history paging over ``items`` served as the simulator pages them
    (newest first, ``after`` strictly older); ``queries`` collects each request's parameters."""
    from core.settings.config import ExchangeSettings
    from core.sim.rest import page

    async def endpoint(query: dict[str, str]) -> dict[str, Any]:
        if queries is not None:
            queries.append(dict(query))
        return {"code": "0", "data": page(items, lambda x: int(x["uTime"]), query)}

    venue = OkxVenue(ExchangeSettings(venue="sim", url="http://127.0.0.1:9", symbols=("BTC/USDT:USDT",)), None)
    params = {"instType": "SWAP"} if since_ms is None else {"instType": "SWAP", "before": str(since_ms - 1)}
    try:
        return await venue.history.pages("reading positions history", endpoint, params,
                                         "uTime", "uTime", since_ms)
    finally:
        await venue.close()


async def test_history_paging_keeps_records_that_share_the_boundary_millisecond() -> None:
    """positions-history pages by uTime and ``after`` means strictly older: two positions closed
    in the same millisecond across a page boundary must both be read, and each only once. The
    endpoint answers with the simulator's own OKX paging (core.sim.rest.page)."""
    # 150 records newest first; the 100th and 101st (0-based 99, 100) share one uTime
    times = [2_000_000 - 10 * i for i in range(150)]
    times[100] = times[99]
    items = [{"posId": f"p{i}", "instId": "BTC-USDT-SWAP", "uTime": str(t)} for i, t in enumerate(times)]
    queries: list[dict[str, str]] = []

    got = await _history_pages(items, queries)
    ids = [i["posId"] for i in got]
    assert sorted(ids) == sorted(i["posId"] for i in items) and len(ids) == len(set(ids)) == 150
    assert queries[1]["after"] == str(times[99] + 1)  # moved to the boundary ms + 1, not past it


async def test_history_paging_since_with_before_reads_every_record_since_over_pages() -> None:
    """A burst: more records since the oldest waiting close than one page holds. With ``before``
    (what positions-history "since" asks), the pages that follow (``after`` and ``before``)
    still read every record since, each once, the boundary millisecond included."""
    times = [2_000_000 - 10 * i for i in range(150)]
    times[100] = times[99]
    items = [{"posId": f"p{i}", "instId": "BTC-USDT-SWAP", "uTime": str(t)} for i, t in enumerate(times)]
    since = times[120]
    queries: list[dict[str, str]] = []
    got = await _history_pages(items, queries, since_ms=since)
    assert sorted(i["posId"] for i in got) == sorted(f"p{i}" for i in range(121))
    assert len(queries) == 2 and all(q["before"] == str(since - 1) for q in queries)


async def test_history_paging_keeps_identical_records_of_two_lives() -> None:
    """A leg opened, closed and opened and closed again within one millisecond at one price: two
    lives, two positions-history records with the same content (one posId in net mode). Across a
    page boundary and within one page, both are read; only the boundary repeat is dropped."""
    times = [2_000_000 - 10 * i for i in range(150)]
    times[100] = times[99]
    times[51] = times[50]
    items = [{"posId": f"p{i}", "instId": "BTC-USDT-SWAP", "uTime": str(t)} for i, t in enumerate(times)]
    items[100] = dict(items[99])  # two lives of one millisecond, across the page boundary
    items[51] = dict(items[50])  # ... and within one page

    got = await _history_pages(items)
    assert len(got) == 150
    assert Counter(i["posId"] for i in got) == Counter(i["posId"] for i in items)


@pytest.mark.parametrize("candles", [True, False])
async def test_candles_are_streamed_only_when_asked(sim: Any, candles: bool) -> None:
    """Only a strategy reads one-minute candles; without one, 50 symbols' open bars were ~100
    pushes a second parsed for nothing (issue 13). Marks flow either way."""
    from core.events import Candle, MarkPrice

    venue = OkxVenue(Exchange(sim.url), None)
    events = Events()
    task = await streaming(venue, events, candles=candles)
    try:
        start = len(events.items)
        for step in range(1, 8):  # the simulator pushes an open candle at most every 500 ms
            sim.set_price("BTC-USDT-SWAP", Decimal(60000 + step))
            await asyncio.sleep(0.2)
        await events.until(lambda e: isinstance(e, MarkPrice), start)
        got = [e for e in events.items[start:] if isinstance(e, Candle)]
        assert bool(got) is candles
    finally:
        await venue.close()
        await asyncio.wait_for(task, 5)
