"""Reconcile against a running simulator, and against an address nothing answers."""
from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.events import FundingBill
from core.journal import Journal, read_trades
from core.model import (
    Fill,
    FundingPayment,
)
from core.reconcile.command import main as reconcile_main
from tests.helpers.reconcile_helpers import BTC, ETH, SOL, D, _settings, edit_cell


@pytest.fixture
def sim_url() -> Iterator[str]:
    """A SimServer in its own thread and loop, so `reconcile.main` (asyncio.run) can reach it like
    a separate `perpdesk sim` process; frozen prices, no slippage, no spread."""
    from core.sim.server import SimServer

    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    srv = SimServer(speed=0, slippage=D(0), spread_ticks=0)
    asyncio.run_coroutine_threadsafe(srv.start(), loop).result(10)
    try:
        yield srv.url
    finally:
        asyncio.run_coroutine_threadsafe(srv.stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


async def _trade_from_outside(url: str) -> None:
    """An unmodified ccxt okx client (okx-protocol.md set-up): BTC long opened, partly closed,
    funding, price up, the rest closed; an ETH short left open with funding on it; a SOL long
    turned short by one fill (net mode crossing zero), then closed."""
    import aiohttp
    import ccxt.async_support as ccxt_async

    from core.sim.ccxt_client import okx_client

    ex = okx_client(ccxt_async.okx, url)

    async def control(path: str, body: dict[str, str]) -> None:
        await asyncio.sleep(0.01)  # distinct millisecond timestamps between steps
        async with aiohttp.ClientSession() as s, s.post(url + path, json=body) as r:
            assert r.status == 200, await r.text()

    try:
        await ex.load_markets()
        await ex.create_order(BTC, "market", "buy", 100)
        await control("/sim/v1/price", {"instId": "BTC-USDT-SWAP", "px": "61000"})
        await ex.create_order(BTC, "market", "sell", 40, None, {"reduceOnly": True})
        await control("/sim/v1/funding", {"instId": "BTC-USDT-SWAP", "rate": "0.0001"})
        await control("/sim/v1/price", {"instId": "BTC-USDT-SWAP", "px": "62000.5"})
        await ex.create_order(BTC, "market", "sell", 60, None, {"reduceOnly": True})
        await ex.create_order(ETH, "market", "sell", 7)
        await control("/sim/v1/funding", {"instId": "ETH-USDT-SWAP", "rate": "-0.0003"})
        await ex.create_order(SOL, "market", "buy", 10)
        await control("/sim/v1/price", {"instId": "SOL-USDT-SWAP", "px": "151.25"})
        await ex.create_order(SOL, "market", "sell", 25)  # crosses zero: long closed, short opened
        await control("/sim/v1/funding", {"instId": "SOL-USDT-SWAP", "rate": "0.0002"})
        await control("/sim/v1/price", {"instId": "SOL-USDT-SWAP", "px": "149.5"})
        await ex.create_order(SOL, "market", "buy", 15)
    finally:
        await ex.close()


async def _journal_from_exchange(url: str, directory: Path) -> None:
    """The journal as the engine would write it: exchange fills and bills, in time order, through
    the real Ledger (close rows, funding attribution) into the real Journal."""
    from core.accounting.ledger import Ledger
    from core.settings.config import ExchangeSettings
    from core.venue import OkxVenue

    venue = OkxVenue(ExchangeSettings(venue="sim", url=url, symbols=(BTC, ETH, SOL)), None)
    await venue.connect()
    try:
        fills, bills = await venue.fetch_fills(None), await venue.fetch_funding_bills(None)
    finally:
        await venue.close()
    assert len(fills) == 7 and len(bills) == 3
    ledger, journal = Ledger(), Journal(directory)
    events: list[Fill | FundingBill] = sorted([*fills, *bills], key=lambda e: e.ts)
    for event in events:
        if isinstance(event, Fill):
            journal.record_fill(event)
            for close in ledger.apply_fill(event):
                journal.record_close(close)
            continue
        pid = ledger.apply_funding(event.symbol, "net", event.amount)
        assert pid is not None
        cs = venue.instruments[event.symbol].contract_size
        journal.record_funding(FundingPayment(
            event.bill_id, event.symbol, pid, event.rate or D(0), event.position_contracts,
            event.position_contracts * cs, event.mark_price, event.amount, event.ccy, event.ts))
    journal.close_sync()


def _short(position_id: str) -> str:
    return position_id.split("#", 1)[1]


def test_end_to_end_sim_reconcile_then_tamper(sim_url: str, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    asyncio.run(_trade_from_outside(sim_url))
    asyncio.run(_journal_from_exchange(sim_url, tmp_path))
    [btc_id] = {r["position_id"] for r in read_trades(tmp_path) if r["symbol"] == BTC}
    assert len(read_trades(tmp_path)) == 4
    assert len({r["position_id"] for r in read_trades(tmp_path) if r["symbol"] == SOL}) == 2

    assert reconcile_main(_settings(sim_url, tmp_path)) == 0, capsys.readouterr().out
    out = capsys.readouterr().out
    assert "all match" in out and "net pnl" in out and "open contracts" in out

    # a fixed [sim] port reaches the simulator embedded in another process the same way
    port = int(sim_url.rsplit(":", 1)[1])
    assert reconcile_main(_settings(None, tmp_path, port=port)) == 0

    [day_file] = tmp_path.glob("trades_*.csv")
    row = next(r for r in read_trades(tmp_path) if r["size_after"] == 0)
    edit_cell(day_file, {"close_id": str(row["close_id"])}, "fee", str(row["fee"] + D("0.0001")))
    assert reconcile_main(_settings(sim_url, tmp_path)) == 1
    out = capsys.readouterr().out
    diff_lines = [x for x in out.splitlines() if x.endswith("DIFF")]
    assert len(diff_lines) == 1 and "fee" in diff_lines[0]
    assert _short(btc_id) in diff_lines[0] and out.rstrip().endswith("1 difference")


def test_main_exit_2_unreachable_exchange_and_missing_journal(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as s:  # a loopback port nobody listens on
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}"
    assert reconcile_main(_settings(dead, tmp_path)) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and dead in err
    assert reconcile_main(_settings(dead, tmp_path / "missing")) == 2
    assert "journal directory" in capsys.readouterr().err
