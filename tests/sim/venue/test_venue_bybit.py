"""The native bybit venue (core/venue/bybit.py) on the simulator's Bybit face: built from the
registry with keys from the environment (no passphrase), REST reads and writes, the private and
public streams into domain events, and the books (fills, funding, lives) from Bybit's own fields."""
from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator
from decimal import Decimal as D
from pathlib import Path
from typing import Any

import ccxt.async_support
import pytest

from core.events import (
    AccountSnapshot,
    Candle,
    FundingRate,
    FundingSignal,
    LinkState,
    MarkPrice,
    PlaceOrder,
    PositionPush,
    StreamStatus,
)
from core.journal import read_fills
from core.model import Fill, OrderSide, OrderState, OrderType, OrderUpdate, Origin
from core.settings.config import ConfigError, Credentials, ExchangeSettings, Settings, load_credentials
from core.settings.demo import DEMO_KEY, DEMO_SECRET
from core.sim.ccxt_client import bybit_client
from core.sim.server import SimServer
from core.venue.base import VenueError, VenueErrorKind
from core.venue.bybit import BybitVenue
from core.venue.bybit_stream import BybitStream
from core.venue.factory import make_venue
from tests.helpers.engine_helpers import control, wait_for

BTC = "BTC/USDT:USDT"


@pytest.fixture
async def venue(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[tuple[SimServer, BybitVenue, list[object]]]:
    srv = SimServer(speed=0, protocol="bybit", slippage=D(0), spread_ticks=0)
    await srv.start()
    monkeypatch.setenv("PERPDESK_API_KEY", DEMO_KEY)
    monkeypatch.setenv("PERPDESK_API_SECRET", DEMO_SECRET)
    monkeypatch.delenv("PERPDESK_API_PASSPHRASE", raising=False)
    v = make_venue(Settings(exchange=ExchangeSettings(venue="bybit", url=srv.url, symbols=(BTC, "ETH/USDT:USDT"))))
    assert isinstance(v, BybitVenue)
    events: list[object] = []
    streams: asyncio.Task[None] | None = None
    try:
        await v.connect()
        streams = asyncio.ensure_future(v.run_streams(events.append))
        await wait_for(lambda: srv.hub.listening("orders") and srv.hub.listening("tickers"), what="the streams")
        yield srv, v, events
    finally:
        await v.close()
        if streams is not None:
            await asyncio.wait_for(streams, 10)
        await srv.stop()


def test_okx_still_needs_a_passphrase_bybit_does_not() -> None:
    env = {"PERPDESK_API_KEY": "k", "PERPDESK_API_SECRET": "s"}
    creds = load_credentials(Settings(exchange=ExchangeSettings(venue="bybit")), env)
    assert (creds.api_key, creds.secret, creds.passphrase) == ("k", "s", "")
    with pytest.raises(ConfigError, match="PERPDESK_API_PASSPHRASE"):
        load_credentials(Settings(exchange=ExchangeSettings(venue="okx")), env)


async def test_trade_stream_and_books(venue: tuple[SimServer, BybitVenue, list[object]]) -> None:
    srv, v, events = venue
    assert v.instruments[BTC].inst_id == "BTCUSDT" and v.instruments[BTC].contract_size == 1
    assert v.instruments[BTC].lot_size == D("0.0001") and v.account_uid == srv.account.uid
    bal = await v.fetch_balance()
    assert bal.equity == 10000 and bal.available == 10000 and bal.ccy == "USDT"
    await wait_for(lambda: any(isinstance(e, MarkPrice) and e.symbol == BTC for e in events), what="a mark price")
    await control(srv, "/sim/v1/price", {"instId": "BTCUSDT", "px": "60000.5"})
    await wait_for(lambda: any(isinstance(e, Candle) and e.symbol == BTC and e.bar == "1m" and e.close == D("60000.5")
                               for e in events), what="a one-minute candle")
    await control(srv, "/sim/v1/price", {"instId": "BTCUSDT", "px": "60000"})
    assert any(isinstance(e, FundingRate) for e in events)

    oid = await v.place_order(PlaceOrder(BTC, OrderSide.BUY, D("0.02"), take_profit=D("63000")), Origin.CONSOLE)
    await wait_for(lambda: any(isinstance(e, Fill) and e.order_id == oid for e in events), what="the entry fill")
    fill = next(e for e in events if isinstance(e, Fill) and e.order_id == oid)
    assert fill.contracts == D("0.02") and fill.price == 60000 and fill.fee == D("0.02") * 60000 * D("0.0005")
    assert fill.origin is Origin.CONSOLE and fill.client_order_id.startswith("pdc")
    await wait_for(lambda: any(isinstance(e, PositionPush) and e.contracts == D("0.02") for e in events), what="position")
    assert any(isinstance(e, AccountSnapshot) and e.equity < 10000 for e in events)
    assert any(isinstance(e, OrderUpdate) and e.order_id == oid and e.state is OrderState.FILLED for e in events)
    (pos,) = await v.fetch_positions()
    assert pos.contracts == D("0.02") and pos.take_profit == 63000
    (tp,) = await v.fetch_open_triggers()
    assert tp.take_profit == 63000 and tp.trigger and tp.reduce_only

    # a resting limit order shows up, is canceled; a second cancel says not found
    rid = await v.place_order(PlaceOrder(BTC, OrderSide.BUY, D("0.01"), OrderType.LIMIT, price=D("50000")),
                              Origin.STRATEGY)
    assert [o.order_id for o in await v.fetch_open_orders()] == [rid]
    await v.cancel_order(BTC, rid)
    with pytest.raises(VenueError) as err:
        await v.cancel_order(BTC, rid)
    assert err.value.kind is VenueErrorKind.NOT_FOUND

    # funding: the stream says settled, the backfill books it
    await control(srv, "/sim/v1/funding", {"instId": "BTCUSDT", "rate": "0.0001"})
    await wait_for(lambda: any(isinstance(e, FundingSignal) for e in events), what="the funding signal")
    (bill,) = await v.fetch_funding_bills(None)
    assert bill.amount == -D("0.02") * 60000 * D("0.0001")

    # move the TP to 62000, close a quarter by hand; the TP closes the rest; the life adds up
    await v.set_position_tp_sl(BTC, "net", D("62000"), None)
    await v.close_position(BTC, contracts=D("0.005"))
    await control(srv, "/sim/v1/price", {"instId": "BTCUSDT", "px": "62000"})
    await wait_for(lambda: any(isinstance(e, Fill) and e.origin is Origin.TP for e in events), what="the TP fill")
    assert await v.fetch_positions() == []
    fills = await v.fetch_fills(None)
    assert len(fills) == 3 and len({f.fill_id for f in fills}) == 3
    (life,) = await v.fetch_positions_history(None)
    assert life.close_type == 2 and life.closed_contracts == D("0.02")
    assert life.realized_pnl == life.pnl + life.fee + life.funding_fee
    assert life.pnl == sum((f.fill_pnl or D(0) for f in fills), D(0))
    assert life.fee == -sum((f.fee for f in fills), D(0)) and life.funding_fee == bill.amount
    assert (await v.fetch_balance()).equity == D(10000) + life.realized_pnl
    candles = await v.fetch_candles(BTC, "1m", 5)
    assert candles and not candles[-1].confirmed and all(c.confirmed for c in candles[:-1])


async def test_faults_retry_reads_and_settle_writes(venue: tuple[SimServer, BybitVenue, list[object]]) -> None:
    srv, v, _ = venue
    await control(srv, "/sim/v1/fault", {"kind": "5xx", "count": 1})
    assert (await v.fetch_balance()).equity == 10000  # a read is retried after a 5xx
    await control(srv, "/sim/v1/fault", {"kind": "rate_limit", "count": 1})
    assert await v.fetch_positions() == []  # ... and after a rate limit (Bybit 10006)
    # a write whose answer is a 5xx is looked up by its orderLinkId: here it never reached the book
    await control(srv, "/sim/v1/fault", {"kind": "5xx", "count": 1})
    with pytest.raises(VenueError, match="was not placed") as err:
        await v.place_order(PlaceOrder(BTC, OrderSide.BUY, D("0.01")), Origin.CONSOLE)
    assert err.value.kind is VenueErrorKind.UNAVAILABLE
    assert await v.fetch_positions() == []


async def test_adl_is_an_adl_fill_and_closes_the_life(venue: tuple[SimServer, BybitVenue, list[object]]) -> None:
    srv, v, events = venue
    await v.place_order(PlaceOrder(BTC, OrderSide.SELL, D("0.03")), Origin.CONSOLE)
    await control(srv, "/sim/v1/price", {"instId": "BTCUSDT", "px": "59000"})
    await control(srv, "/sim/v1/adl", {"instId": "BTCUSDT", "sz": "0.01"})  # coins on the Bybit face
    await wait_for(lambda: any(isinstance(e, Fill) and e.origin is Origin.ADL for e in events), what="the ADL fill")
    (pos,) = await v.fetch_positions()
    assert pos.contracts == -D("0.02")
    await control(srv, "/sim/v1/adl", {"instId": "BTCUSDT"})
    adl = [f for f in await v.fetch_fills(None) if f.category == "adl"]
    assert [f.contracts for f in adl] == [D("0.01"), D("0.02")] and all(f.fee == 0 for f in adl)
    (life,) = await v.fetch_positions_history(None)
    assert life.close_type == 6 and life.pnl == D("0.03") * 1000
    assert life.fee == -D("0.03") * 60000 * D("0.0005")  # the opening fee only: ADL is fee-free


async def test_headless_run_on_bybit_from_the_config(tmp_path: Any) -> None:
    """`perpdesk --headless` with [exchange] venue = "bybit": keys from the environment, the journal
    bound to the Bybit account id, a trade made meanwhile by another client journaled."""
    srv = SimServer(speed=0, protocol="bybit", slippage=D(0), spread_ticks=0)
    await srv.start()
    try:
        (tmp_path / "c.toml").write_text(f'[exchange]\nvenue = "bybit"\nurl = "{srv.url}"\n'
                                         'symbols = ["BTC/USDT:USDT"]\n[strategy]\nname = "none"\n')
        env = {k: v for k, v in os.environ.items() if not k.startswith("PERPDESK_")}
        env.update(PERPDESK_API_KEY=DEMO_KEY, PERPDESK_API_SECRET=DEMO_SECRET)
        exe = str(Path(sys.executable).with_name("perpdesk"))
        proc = await asyncio.create_subprocess_exec(exe, "--config", "c.toml", "--headless", "--duration", "4",
                                                    cwd=tmp_path, env=env, stdout=asyncio.subprocess.PIPE,
                                                    stderr=asyncio.subprocess.PIPE)
        await wait_for(lambda: (tmp_path / "journal" / "account.json").exists(), 20, "the journal's account")
        await wait_for(lambda: srv.hub.listening("orders"), 20, "the engine's private stream")
        ext = bybit_client(ccxt.async_support.bybit, srv.url)
        try:
            await ext.create_order(BTC, "market", "buy", 0.01)
        finally:
            await ext.close()
        out, err = await asyncio.wait_for(proc.communicate(), 30)
        assert proc.returncode == 0, err.decode()
        account = (tmp_path / "journal" / "account.json").read_text()
        assert '"bybit"' in account and srv.account.uid in account
        fills = read_fills(tmp_path / "journal")
        assert len(fills) == 1 and fills[0]["symbol"] == BTC and D(fills[0]["contracts"]) == D("0.01")
    finally:
        await srv.stop()


async def test_stream_pings_and_reconnects_after_a_drop() -> None:
    """Bybit's JSON ping is answered (latency measured), and a dropped connection comes back
    authenticated and subscribed (pushes flow again)."""
    srv = SimServer(speed=0, protocol="bybit")
    await srv.start()
    statuses: list[StreamStatus] = []
    msgs: list[dict[str, Any]] = []
    stream = BybitStream("private", f"{srv.ws_url}/private", ["wallet"], msgs.append, statuses.append,
                         credentials=(DEMO_KEY, DEMO_SECRET), ping_interval=0.1, backoff_initial=0.05)
    task = asyncio.ensure_future(stream.run())
    try:
        await wait_for(lambda: any(s.message == "latency" for s in statuses), what="a pong")
        assert stream.extensions == ()  # loopback: no permessage-deflate offered, none negotiated
        await control(srv, "/sim/v1/drop", {})
        await wait_for(lambda: any(s.state is LinkState.DISCONNECTED for s in statuses), what="the drop")
        await wait_for(lambda: statuses[-1].state is LinkState.CONNECTED and srv.hub.listening("account"),
                       what="the reconnect")
        srv.exchange.emit_account(srv.account)
        srv.flush()
        await wait_for(lambda: any(m.get("topic") == "wallet" for m in msgs), what="a wallet push after the reconnect")
    finally:
        await stream.stop()
        await asyncio.wait_for(task, 10)
        await srv.stop()


async def test_hedge_mode_an_execution_before_its_order_takes_the_order_leg() -> None:
    """Bybit's executions carry no positionIdx; when one arrives before the order topic told its
    order's leg, the venue looks the order up by id (REST) and the fill carries the leg."""
    srv = SimServer(speed=0, protocol="bybit", slippage=D(0), spread_ticks=0)
    await srv.start()
    ext = bybit_client(ccxt.async_support.bybit, srv.url)
    v = BybitVenue(ExchangeSettings(venue="bybit", url=srv.url, symbols=(BTC,)), Credentials(DEMO_KEY, DEMO_SECRET, ""))
    try:
        await ext.load_markets()
        await ext.set_position_mode(True, BTC)
        await v.connect()
        assert v.hedge  # both legs listed by the position list
        events: list[object] = []
        v.sink = events.append  # no stream: the order topic never tells the orders' legs
        await ext.create_order(BTC, "market", "sell", 0.02, None, {"positionIdx": 2})
        await ext.create_order(BTC, "market", "buy", 0.05, None, {"positionIdx": 1})
        execs = (await ext.privateGetV5ExecutionList({"category": "linear"}))["result"]["list"]
        assert len(execs) == 2
        v.on_push("private", {"topic": "execution", "creationTime": 1, "data": execs})
        await wait_for(lambda: len([e for e in events if isinstance(e, Fill)]) == 2, what="the two fills")
        legs = {f.side: f.pos_side for f in events if isinstance(f, Fill)}
        assert legs == {OrderSide.SELL: "short", OrderSide.BUY: "long"}
    finally:
        await v.close()
        await ext.close()
        await srv.stop()
