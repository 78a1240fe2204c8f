"""Issue 10 item 1: a stalled engine must not reorder history.

End to end: `perpdesk --headless` (strategy none) runs as a real process against the test's
simulator, watching the account an outside ccxt client trades on. The client opens ETH long,
SOL short and BTC long, each with attached TP/SL; the engine is frozen (SIGSTOP); prices move so
all three stops fire; a new BTC long opens, funding settles, part of it is sold; then the engine
is thawed (SIGCONT) and reads the pushes that piled up meanwhile. The TP/SL fills' algo kinds are
unknown to the engine (their orders-algo pushes sit on another socket), so before the fix the
stop-loss fill waited for a REST look-up while the later BTC fills went straight through: two
lives merged, the funding bill and a fill were counted in the wrong close rows, and a phantom BTC
position was left open. Afterwards `perpdesk reconcile` must exit 0, also after a restart. On
both faces of the simulator (OKX v5, and Bybit v5 through the native bybit venue).
"""
from __future__ import annotations

import asyncio
import signal
from collections import Counter
from decimal import Decimal as D
from pathlib import Path

import pytest

from core.journal import read_fills, read_funding, read_trades
from core.journal.schema import FILL_IDS_SEPARATOR
from tests.helpers.engine_helpers import BTC, BTC_ID, ETH, VENUES, Rig, control, set_price, wait_for
from tests.helpers.headless import _safe, _spawn, _start_headless

pytestmark = pytest.mark.timeout(150)

SOL = "SOL/USDT:USDT"
STALL_S = 6.0  # the engine is frozen this long while the exchange moves on


def _config(rig: Rig, tmp_path: Path) -> Path:
    cfg = tmp_path / "config.toml"
    cfg.write_text(f'[exchange]\nvenue = "sim"\nurl = "{rig.srv.url}"\n'
                   f'symbols = ["{BTC}", "{ETH}", "{SOL}"]\n'
                   '[journal]\ndir = "journal"\n[strategy]\nname = "none"\n'
                   f'[sim]\nprotocol = "{rig.protocol}"\n')
    return cfg


async def _stop(proc: asyncio.subprocess.Process) -> int:
    proc.send_signal(signal.SIGTERM)
    return await asyncio.wait_for(proc.wait(), 60)


async def _reconcile(cfg: Path) -> tuple[int, str]:
    rec = await _spawn(cfg, "reconcile")
    out, err = await asyncio.wait_for(rec.communicate(), 60)
    return rec.returncode or 0, out.decode() + err.decode()


async def _held(rig: Rig) -> list[dict[str, object]]:
    """The account's open positions as the outside client reads them (ccxt bybit takes one
    symbol or none, so: none, then the open ones)."""
    return [p for p in await rig.ext.fetch_positions() if p["contracts"]]


def _tp_sl(tp: int, sl: int) -> dict[str, object]:
    return {"takeProfit": {"triggerPrice": tp}, "stopLoss": {"triggerPrice": sl}}


@pytest.mark.parametrize("venue", VENUES)
async def test_stalled_engine_applies_fills_in_exchange_order(rig: Rig, tmp_path: Path) -> None:
    cfg = _config(rig, tmp_path)
    jdir = tmp_path / "journal"
    proc = await _start_headless(cfg)
    try:
        await rig.ext.create_order(ETH, "market", "buy", rig.amt(1, ETH), None, _tp_sl(3300, 2900))
        await rig.ext.create_order(SOL, "market", "sell", rig.amt(2, SOL), None, _tp_sl(140, 160))
        await rig.ext.create_order(BTC, "market", "buy", rig.amt(1), None, _tp_sl(63000, 58000))
        await wait_for(lambda: len(_safe(read_fills, jdir)) == 3, 20, "three opening fills on disk")

        proc.send_signal(signal.SIGSTOP)
        try:
            await set_price(rig.srv, "2890", "ETH-USDT-SWAP")
            await set_price(rig.srv, "161", "SOL-USDT-SWAP")
            await set_price(rig.srv, "57900", BTC_ID)
            assert [p["symbol"] for p in await _held(rig)] == []
            await rig.outside("buy", 2)
            (bill,) = await control(rig.srv, "/sim/v1/funding", {"instId": BTC_ID, "rate": "0.0001"})
            await rig.outside("sell", 1, reduce_only=True)
            await asyncio.sleep(STALL_S)
        finally:
            proc.send_signal(signal.SIGCONT)

        await wait_for(lambda: len(_safe(read_fills, jdir)) == 8
                       and len(_safe(read_funding, jdir)) == 1
                       and len(_safe(read_trades, jdir)) >= 4, 40, "the stall's fills, bill, closes")
        await asyncio.sleep(1.0)  # anything wrong that follows (a resync's rows) lands too
    finally:
        if proc.returncode is None:
            assert await _stop(proc) == 0

    code, out = await _reconcile(cfg)
    assert code == 0, out

    # a restart rebuilds from the journal and must not change its verdict
    proc = await _start_headless(cfg)
    await asyncio.sleep(2.0)
    assert await _stop(proc) == 0
    code, out = await _reconcile(cfg)
    assert code == 0, out

    fills, trades, funding = read_fills(jdir), read_trades(jdir), read_funding(jdir)
    ids = [f["fill_id"] for f in fills]
    assert max(Counter(ids).values()) == 1 and sorted(ids) == sorted(await rig.exchange_fill_ids())
    in_rows = [i for r in trades for i in str(r["fill_ids"]).split(FILL_IDS_SEPARATOR) if i]
    assert max(Counter(in_rows).values()) == 1, trades  # no fill counted in two close rows
    if rig.bybit:  # the Funding execution's execId
        (bill,) = await rig.funding_bills()
    assert [f["bill_id"] for f in funding] == [bill["billId"]]
    # the bill belongs to the new BTC life (the old one was stopped out before it settled)
    btc_rows = sorted((r for r in trades if r["symbol"] == BTC), key=lambda r: r["closed_at"])
    assert [(r["reason"], r["size_before"], r["size_after"]) for r in btc_rows] == [
        ("sl", D("0.01"), D("0")), ("external", D("0.02"), D("0.01"))], btc_rows  # coins
    assert funding[0]["position_id"] == btc_rows[1]["position_id"]
    assert btc_rows[0]["position_id"] != btc_rows[1]["position_id"]
    # no phantom: what the journal last shows open is what the exchange holds
    [held] = await _held(rig)
    assert held["symbol"] == BTC and D(str(held["contracts"])) == rig.ct(1)
