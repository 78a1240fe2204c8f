"""A burst of outside market orders on one symbol (>= 100 orders/s for a few seconds): every fill
and every close row must be journaled, the engine must stop promptly with nothing left behind,
and the journal must reconcile with the exchange position by position, no fill or bill twice.

End to end: the real adapter and engine against the simulator, the orders sent by an unmodified
ccxt client behind the engine's back (alternating buy / sell of 1 contract, so lives open and
close all the time, and grow and close in parts when two buys land back to back).

The simulator runs on its plain millisecond clock: a loaded machine bunches a burst's orders so
that a leg opens, closes and opens again within one millisecond, and those lives must stay apart
(their own position_id, their own positions-history record, matched one to one).

On both faces of the simulator: on Bybit v5 (the native bybit venue) every close confirmation
reads the execution and closed-PnL lists, and the lives are counted from the executions.
"""
from __future__ import annotations

import asyncio
from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from core.confirm.unconfirmed import FILE_NAME as UNCONFIRMED_FILE
from core.confirm.unconfirmed import load
from core.ids import split_position_id
from core.journal import read_fills, read_funding, read_trades
from core.reconcile.command import main as reconcile_main
from core.settings.config import ExchangeSettings, JournalSettings, Settings, SimSettings
from core.sim.ccxt_client import market_burst
from core.venue import VenueError
from tests.helpers.engine_helpers import BTC, BTC_ID, ETH, VENUES, Rig, wait_for
from tests.helpers.fault_helpers import LogCapture

pytestmark = pytest.mark.timeout(120)

RATE = 130  # outside orders per second asked for (>= 100 must be reached)
SECONDS = 5.0
CATCH_UP_S = 5.0  # close rows written at most this long after the last fill is journaled


async def outside_burst(rig: Rig, rate: float, seconds: float,
                        symbol: str = BTC) -> tuple[int, float]:
    """Send ``rate`` market orders of 1 contract a second for ``seconds``, alternating buy and sell,
    each on its own schedule slot whatever the previous one's latency (late ones catch up).
    Returns (orders sent, orders per second sent)."""
    results, sent_in, _ = await market_burst(rig.ext, symbol, rate, seconds, rig.amt(1, symbol))
    errors = [r for r in results if isinstance(r, BaseException)]
    assert not errors, f"{len(errors)} orders failed, first: {errors[0]!r}"
    return len(results), len(results) / sent_in


async def all_history(ext: Any, inst: str = BTC_ID) -> list[dict[str, str]]:
    """Every positions-history record of ``inst`` (all pages), as the exchange returns them.

    The next page starts again at the last page's oldest millisecond: exactly the records already
    read of it are dropped (two lives of one millisecond may have identical records)."""
    out: list[dict[str, str]] = []
    params: dict[str, str] = {"instType": "SWAP", "instId": inst, "limit": "100"}
    repeats: list[dict[str, str]] = []
    while True:
        page = list((await ext.private_get_account_positions_history(params))["data"])
        for p in page:
            if p in repeats:
                repeats.remove(p)
            else:
                out.append(p)
        if len(page) < 100:
            return out
        oldest = page[-1]["uTime"]
        repeats = [p for p in page if p["uTime"] == oldest]
        params = {**params, "after": str(int(oldest) + 1)}


async def bybit_closed_lives(rig: Rig) -> Counter[int]:
    """Bybit keeps no per-life record: the lives its executions closed, by opening millisecond,
    walked in the exchange's order (execution time, then execId as the simulator numbers them)."""
    execs = sorted(await rig.executions("Trade"), key=lambda e: (int(e["execTime"]), int(e["execId"])))
    out: Counter[int] = Counter()
    size, opened = Decimal(0), 0
    for e in execs:
        if size == 0:
            opened = int(e["execTime"])
        size += Decimal(e["execQty"]) * (1 if e["side"] == "Buy" else -1)
        if size == 0:
            out[opened] += 1
    return out


@pytest.mark.parametrize("venue", VENUES)
async def test_burst_of_outside_orders_leaves_nothing_at_stop(rig: Rig, logs: LogCapture) -> None:
    engine = await rig.start_engine()
    sent, rate = await outside_burst(rig, RATE, SECONDS)
    assert rate >= 100, f"the burst reached only {rate:.0f} orders/s"
    assert await rig.exchange_fill_ids(), "the burst filled nothing"
    await rig.wait_fills(sent, timeout=30)  # every fill reached the journal ...
    loop = asyncio.get_running_loop()
    # ... and the close rows keep up with the fills: no backlog of unconfirmed closes builds up
    await wait_for(lambda: engine.confirmer.idle, CATCH_UP_S, "close rows to catch up")
    t_stop = loop.time()
    await rig.stop_engine()  # ... then stop at once: pending close rows must not be left behind
    stop_s = loop.time() - t_stop
    assert engine is not None

    assert not logs.matching("left at stop"), logs.matching("left at stop")[0].message
    assert stop_s < 15, f"stop took {stop_s:.1f} s"

    fills = read_fills(rig.journal_dir)
    assert len(fills) == sent
    assert max(Counter(f["fill_id"] for f in fills).values()) == 1
    funding = read_funding(rig.journal_dir)
    assert not funding or max(Counter(b["bill_id"] for b in funding).values()) == 1
    trades = read_trades(rig.journal_dir)
    assert max(Counter(t["close_id"] for t in trades).values()) == 1

    # every life the exchange closed (positions-history type 2 full close, 3 liquidation, 6 ADL)
    # has its final close row in the journal, under the life's own opening time, once: as many
    # final rows opened in each millisecond as lives the exchange closed that were created in it,
    # each under its own position_id
    if rig.bybit:
        closed_lives = await bybit_closed_lives(rig)
    else:
        history = await all_history(rig.ext)
        closed_lives = Counter(int(h["cTime"]) for h in history if h["type"] in ("2", "3", "6"))
    assert sum(closed_lives.values()) >= sent // 10, f"only {len(closed_lives)} lives closed"
    full = [str(t["position_id"]) for t in trades if t["size_after"] == 0]
    assert max(Counter(full).values()) == 1, "two final close rows under one position_id"
    full_rows = Counter(split_position_id(pid)[2] for pid in full)
    assert full_rows == closed_lives, (sorted((full_rows - closed_lives).items())[:5],
                                       sorted((closed_lives - full_rows).items())[:5])

    settings = Settings(exchange=ExchangeSettings(venue="sim", url=rig.srv.url, symbols=(BTC, ETH)),
                        journal=JournalSettings(dir=rig.journal_dir), sim=SimSettings(protocol=rig.protocol),
                        config_path=Path(rig.journal_dir.parent / "config.toml"))
    code = await asyncio.to_thread(reconcile_main, settings)
    assert code == 0, "reconcile found differences: " + " | ".join(
        ln.message for ln in logs.lines if "DIFF" in ln.message)[:2000]


@pytest.mark.parametrize("venue", VENUES)
async def test_rows_waiting_at_stop_are_written_and_checked_at_the_next_start(
        rig: Rig, logs: LogCapture) -> None:
    """positions-history cannot be read (only it): the close waits for it; a prompt stop writes the
    row from the ledger, once, and lists it; the next start checks it against positions-history,
    logs the outcome and clears the list."""
    engine = await rig.start_engine()
    assert rig.venue is not None

    async def unavailable(since: Any) -> list[Any]:
        raise VenueError("reading positions history failed: exchange unavailable", "unavailable")

    rig.venue.fetch_positions_history = unavailable  # type: ignore[method-assign]
    await rig.outside("buy", 3)
    await rig.outside("sell", 3)
    await rig.wait_fills(2)
    await wait_for(lambda: engine.confirmer.pending == 1, 10, "the close to wait for the exchange")
    await rig.stop_engine()
    [row] = rig.trades()
    assert row["source"] == "ledger" and row["size_after"] == 0
    sidecar = rig.journal_dir / UNCONFIRMED_FILE
    [listed] = load(sidecar)
    assert listed.close_id == row["close_id"]
    assert logs.one("CLOSE UNCONFIRMED 1 close rows written from the ledger at stop").level == "WARNING"

    await rig.start_engine()
    await wait_for(lambda: not sidecar.exists(), 10, "the listed row to be checked")
    assert logs.one("CLOSE CHECKED", str(row["position_id"])).level == "INFO"
    await rig.flush()
    assert len(rig.trades()) == 1  # written once, never again at the restart
    assert rig.engine is not None
    assert (await rig.engine.reconcile()).ok
