"""Issue 4: the engine SIGKILLed while funding and the take-profit happen, then restarted.

The simulator lives in this test's event loop (it must outlive the engine); the engine runs as a
real `perpdesk --headless` process pointed at it, and is killed with SIGKILL (no shutdown code
runs, the journal keeps whatever its group commit had fsynced). After the restart the journal must
hold every fill once, the two close rows and the funding row, adding up to realizedPnl, and
`perpdesk reconcile` must exit 0 (and 1 once a row is tampered with). On both faces of the
simulator: OKX v5, and Bybit v5 (`[sim] protocol = "bybit"`: the native bybit venue, whose
realized PnL is its closed-PnL records plus the Funding executions).
"""
from __future__ import annotations

import asyncio
import csv
import signal
from collections import Counter
from decimal import Decimal as D
from pathlib import Path

import pytest

from core.journal import read_fills, read_funding, read_trades
from tests.helpers.engine_helpers import (
    BTC_ID,
    VENUES,
    Rig,
    control,
    net_sum,
    set_price,
    tp_for_the_rest,
    wait_for,
)
from tests.helpers.headless import _config, _safe, _spawn, _start_headless

pytestmark = pytest.mark.timeout(120)


@pytest.mark.parametrize("venue", VENUES)
async def test_sigkill_and_restart_while_funding_and_tp_happen(rig: Rig, tmp_path: Path) -> None:
    cfg = _config(rig, tmp_path)
    jdir = tmp_path / "journal"
    proc = await _start_headless(cfg)
    try:
        await rig.outside("buy", 100)
        await wait_for(lambda: len(_safe(read_fills, jdir)) == 1, 20, "opening fill on disk")
        await set_price(rig.srv, "61000")
        await rig.outside("sell", 40, reduce_only=True)
        await wait_for(lambda: len(_safe(read_trades, jdir)) == 1, 20, "partial close on disk")
        await tp_for_the_rest(rig)
    finally:
        proc.send_signal(signal.SIGKILL)
        await proc.wait()
    assert proc.returncode == -signal.SIGKILL

    (bill,) = await control(rig.srv, "/sim/v1/funding", {"instId": BTC_ID, "rate": "0.0001"})
    await set_price(rig.srv, "62500")

    proc = await _start_headless(cfg)
    try:
        await wait_for(lambda: len(_safe(read_trades, jdir)) == 2 and len(_safe(read_funding, jdir)) == 1,
                       30, "tp close and funding after restart")
    finally:
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 30) == 0

    trades, fills, funding = read_trades(jdir), read_fills(jdir), read_funding(jdir)
    assert [(r["reason"], r["size_before"], r["size_after"]) for r in trades] == [
        ("external", D("1"), D("0.6")), ("tp", D("0.6"), D("0"))]
    assert trades[0]["funding"] == 0 and trades[1]["funding"] == D("-3.66")
    if rig.bybit:  # closed PnL per closing order, funding on its own rows
        realized = sum((D(c["closedPnl"]) for c in await rig.closed_pnl()), D(0)) + trades[1]["funding"]
    else:
        (hist,) = await rig.positions_history()
        realized = D(hist["realizedPnl"])
    assert net_sum(trades) == realized
    ids = [f["fill_id"] for f in fills]
    assert max(Counter(ids).values()) == 1 and sorted(ids) == sorted(await rig.exchange_fill_ids())
    if rig.bybit:  # the Funding execution's execId
        (bill,) = await rig.funding_bills()
    assert [f["bill_id"] for f in funding] == [bill["billId"]]

    rec = await _spawn(cfg, "reconcile")
    out, err = await rec.communicate()
    assert rec.returncode == 0, (out.decode(), err.decode())

    # tamper with one close row: reconcile must see it
    path = next(jdir.glob("trades_*.csv"))
    rows = list(csv.reader(path.open()))
    col = rows[0].index("net_pnl")
    rows[2][col] = str(D(rows[2][col]) + D("0.01"))
    with path.open("w", newline="") as f:
        csv.writer(f, lineterminator="\n").writerows(rows)
    rec = await _spawn(cfg, "reconcile")
    out, _ = await rec.communicate()
    assert rec.returncode == 1, out.decode()
