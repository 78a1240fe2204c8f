"""Shared rig for the engine tests: a real SimServer on an ephemeral loopback port, the real venue,
journal and engine, and an outside client (an unmodified ccxt.async_support.okx with the demo
credentials, set up as okx-protocol.md shows) that trades on the same account behind the engine's
back, the way a second app or OKX's web UI would.

The simulator runs with speed 0 (prices move only through /sim/v1/price), zero slippage and zero
spread, so every expected number can also be worked out by hand from the fee rates.

Both faces of the simulator: ``make_rig(..., protocol="bybit")`` serves the same exchange as
Bybit v5, the engine trades on it through the native bybit venue and the outside client is an
unmodified ccxt bybit. Tests written for both take the ``venue`` fixture param (conftest) and say
sizes through ``rig.ct(n)`` / ``rig.amt(n)``: ``n`` OKX contracts of the instrument, as the
venue counts them (OKX: contracts; Bybit: coins, 0.01 BTC a contract), so every expected coin
and money figure is the same on both.
"""
from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import ccxt.async_support as ccxt_async

from core.engine import Engine
from core.journal import Journal, read_fills, read_funding, read_orders, read_trades
from core.settings.config import SIM_DEMO_CREDENTIALS, ExchangeSettings
from core.sim.ccxt_client import bybit_client, okx_client
from core.sim.server import SimServer
from core.venue import OkxVenue
from core.venue.base import Venue
from core.venue.bybit import BybitVenue

BTC = "BTC/USDT:USDT"
BTC_ID = "BTC-USDT-SWAP"
ETH = "ETH/USDT:USDT"
TAKER = Decimal("0.0005")
VENUES = ("okx", "bybit")  # the simulator's faces a behaviour test runs on (the ``venue`` param)


def inst_id(symbol: str) -> str:
    """The simulator core's id of a perpdesk symbol (its /sim/v1 takes it on both faces)."""
    return symbol.split("/")[0] + "-USDT-SWAP"


def outside_client(srv: SimServer) -> Any:
    """Another app on the same account: plain ccxt (okx or bybit, as the face), nothing of ours."""
    if srv.protocol == "bybit":
        return bybit_client(ccxt_async.bybit, srv.url)
    return okx_client(ccxt_async.okx, srv.url)


async def control(srv: SimServer, path: str, body: dict[str, Any] | None = None) -> Any:
    """The simulator's /sim/v1 control endpoints; returns the ``data`` list."""
    async with aiohttp.ClientSession() as s:
        if body is None:
            async with s.get(srv.url + path) as r:
                payload = await r.json()
        else:
            async with s.post(srv.url + path, json=body) as r:
                payload = await r.json()
                assert r.status == 200, payload
    return payload["data"]


async def set_price(srv: SimServer, px: str, inst: str = BTC_ID) -> None:
    await control(srv, "/sim/v1/price", {"instId": inst, "px": px})


async def sim_state(srv: SimServer) -> dict[str, Any]:
    return (await control(srv, "/sim/v1/state"))[0]["accounts"][0]


async def wait_for(pred: Callable[[], bool | Awaitable[bool]], timeout: float = 15.0,
                   what: str = "condition") -> None:
    """Poll ``pred`` (plain or awaitable) until it holds, waiting on the condition rather than on a
    guess of how long it takes; past ``timeout`` an AssertionError names ``what`` was awaited."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        got = pred()
        if not isinstance(got, bool):
            got = await got
        if got:
            return
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


@dataclass
class Rig:
    srv: SimServer
    ext: Any
    journal_dir: Path
    venue: Any = None  # OkxVenue or BybitVenue, as the simulator's face
    journal: Journal | None = None
    engine: Engine | None = None
    events: list[Any] = field(default_factory=list)

    @property
    def protocol(self) -> str:
        return self.srv.protocol

    @property
    def bybit(self) -> bool:
        return self.srv.protocol == "bybit"

    def ct(self, n: Decimal | int | str, symbol: str = BTC) -> Decimal:
        """``n`` OKX contracts of ``symbol`` as the venue counts them (Bybit: coins)."""
        n = Decimal(str(n))
        return n * self.srv.exchange.spec(inst_id(symbol)).ct_val if self.bybit else n

    def amt(self, n: Decimal | int | str, symbol: str = BTC) -> Any:
        """``n`` OKX contracts as the outside ccxt client's amount (Bybit: coins)."""
        return float(self.ct(n, symbol)) if self.bybit else n

    def make_venue(self, symbols: tuple[str, ...] = (BTC, ETH)) -> Venue:
        settings = ExchangeSettings(venue="sim", url=self.srv.url, symbols=symbols)
        if self.bybit:
            return BybitVenue(settings, SIM_DEMO_CREDENTIALS)
        return OkxVenue(settings, SIM_DEMO_CREDENTIALS)

    async def start_engine(self, **kwargs: Any) -> Engine:
        self.venue = self.make_venue()
        self.journal = Journal(self.journal_dir)
        self.engine = Engine(self.venue, self.journal, **kwargs)
        self.events = []
        self.engine.subscribe(self.events.append)
        await self.engine.start()
        return self.engine

    async def stop_engine(self) -> None:
        if self.engine is not None:
            await self.engine.stop()
        if self.journal is not None:
            await self.journal.close()
        self.engine = None
        self.journal = None

    async def flush(self) -> None:
        assert self.engine is not None
        assert await self.engine.settle(), "engine did not settle"

    # ---- journal reads
    def trades(self) -> list[dict[str, Any]]:
        return read_trades(self.journal_dir)

    def fills(self) -> list[dict[str, Any]]:
        return read_fills(self.journal_dir)

    def orders(self) -> list[dict[str, Any]]:
        return read_orders(self.journal_dir)

    def funding(self) -> list[dict[str, Any]]:
        return read_funding(self.journal_dir)

    async def wait_trades(self, n: int, timeout: float = 15.0) -> list[dict[str, Any]]:
        async def have() -> bool:
            assert self.journal is not None
            await self.journal.flush()
            return len(self.trades()) >= n
        await wait_for(have, timeout, f"{n} close rows")
        return self.trades()

    async def wait_funding(self, n: int, timeout: float = 15.0) -> list[dict[str, Any]]:
        async def have() -> bool:
            assert self.journal is not None
            await self.journal.flush()
            return len(self.funding()) >= n
        await wait_for(have, timeout, f"{n} funding rows")
        return self.funding()

    async def wait_fills(self, n: int, timeout: float = 15.0) -> list[dict[str, Any]]:
        async def have() -> bool:
            assert self.journal is not None
            await self.journal.flush()
            return len(self.fills()) >= n
        await wait_for(have, timeout, f"{n} fills")
        return self.fills()

    # ---- the exchange's own truth, read by the outside client
    async def positions_history(self, inst: str = BTC_ID) -> list[dict[str, str]]:
        resp = await self.ext.private_get_account_positions_history({"instType": "SWAP", "instId": inst})
        return list(resp["data"])

    async def executions(self, exec_type: str | None = None) -> list[dict[str, str]]:
        """Bybit: every execution of the account (newest first), of ``exec_type`` when given."""
        out: list[dict[str, str]] = []
        cursor = ""
        while True:
            query = {"category": "linear", "limit": 100, **({"cursor": cursor} if cursor else {})}
            result = (await self.ext.privateGetV5ExecutionList(query))["result"]
            out += result["list"]
            cursor = result.get("nextPageCursor") or ""
            if not cursor or not result["list"]:
                break
        return [e for e in out if exec_type is None or e["execType"] == exec_type]

    async def closed_pnl(self) -> list[dict[str, str]]:
        """Bybit: the closed-PnL records (one per closing order) of the account."""
        result = (await self.ext.privateGetV5PositionClosedPnl({"category": "linear", "limit": 100}))["result"]
        return list(result["list"])

    async def exchange_fill_ids(self) -> list[str]:
        if self.bybit:
            return [e["execId"] for e in await self.executions() if e["execType"] != "Funding"]
        resp = await self.ext.private_get_trade_fills_history({"instType": "SWAP", "limit": "100"})
        return [f["tradeId"] for f in resp["data"]]

    async def funding_bills(self) -> list[dict[str, str]]:
        """Funding bills as OKX shapes them (billId, balChg); on Bybit the Funding executions
        (execId, and -execFee: execFee is what the account paid)."""
        if self.bybit:
            return [{"billId": e["execId"], "balChg": str(-Decimal(e["execFee"]))}
                    for e in await self.executions("Funding")]
        resp = await self.ext.private_get_account_bills({"instType": "SWAP", "type": "8"})
        return list(resp["data"])

    async def outside(self, side: str, n: Decimal | int | str, symbol: str = BTC, *,
                      reduce_only: bool = False) -> Any:
        """A market order of ``n`` OKX contracts by the outside client (another app)."""
        return await self.ext.create_order(symbol, "market", side, self.amt(n, symbol), None,
                                           {"reduceOnly": True} if reduce_only else {})


async def make_rig(tmp_path: Path, **sim_kwargs: Any) -> Rig:
    """``protocol="bybit"`` among ``sim_kwargs``: the simulator's Bybit face (module doc)."""
    kwargs: dict[str, Any] = dict(speed=0, slippage=Decimal(0), spread_ticks=0)
    kwargs.update(sim_kwargs)
    srv = SimServer(**kwargs)
    await srv.start()
    ext = outside_client(srv)
    await ext.load_markets()
    return Rig(srv=srv, ext=ext, journal_dir=tmp_path / "journal")


async def close_rig(rig: Rig) -> None:
    try:
        await rig.stop_engine()
    finally:
        await rig.ext.close()
        await rig.srv.stop()


def net_sum(rows: list[dict[str, Any]]) -> Decimal:
    return sum((r["net_pnl"] for r in rows), Decimal(0))


def assert_rows_consistent(rows: list[dict[str, Any]]) -> None:
    """Every row's own arithmetic: net = gross - fee - penalty + funding; sizes add up."""
    for r in rows:
        assert r["net_pnl"] == r["gross_pnl"] - r["fee"] - r["liq_penalty"] + r["funding"], r
        assert r["size_before"] - r["size_closed"] == r["size_after"], r
        assert r["contracts_closed"] * r["contract_size"] == r["size_closed"], r


async def exchange_position(rig: Rig, inst: str = BTC_ID) -> Decimal:
    """The exchange's own position size for ``inst`` (signed, net mode, as the venue counts:
    OKX contracts, Bybit coins), from /sim/v1/state."""
    for p in (await sim_state(rig.srv))["positions"]:
        if rig.bybit and p["symbol"] == inst.replace("-USDT-SWAP", "USDT"):
            return Decimal(p["size"]) * (1 if p["side"] == "Buy" else -1)
        if not rig.bybit and p["instId"] == inst:
            return Decimal(p["pos"])
    return Decimal(0)


async def wait_position(rig: Rig, contracts: str, inst: str = BTC_ID, what: str | None = None) -> None:
    """Wait until the exchange holds ``contracts`` (OKX contracts of ``inst``, as ``rig.ct``
    counts them) on ``inst``."""
    symbol = BTC if inst == BTC_ID else ETH

    async def check() -> bool:
        return await exchange_position(rig, inst) == rig.ct(contracts, symbol)
    await wait_for(check, what=what or f"{inst} at {contracts} contracts on the exchange")


async def tp_for_the_rest(rig: Rig) -> None:
    """A take-profit at 62000 for the 0.6 BTC (60 contracts) of BTC left, set behind the engine's
    back: OKX, ccxt's takeProfitPrice (a TP algo); Bybit, the position's own TP (trading-stop),
    as its web UI sets it."""
    if rig.bybit:
        await rig.ext.privatePostV5PositionTradingStop({
            "category": "linear", "symbol": "BTCUSDT", "tpslMode": "Full", "positionIdx": 0,
            "takeProfit": "62000"})
    else:
        await rig.ext.create_order(BTC, "market", "sell", 60, None,
                                   {"reduceOnly": True, "takeProfitPrice": 62000})


async def flat_and_nothing_resting(rig: Rig) -> bool:
    """The exchange holds no position, no open order and no TP/SL or trigger order."""
    state = await sim_state(rig.srv)
    return state["positions"] == [] and state["openOrders"] == [] and state["liveAlgos"] == []
