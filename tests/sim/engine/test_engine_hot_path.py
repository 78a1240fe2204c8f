"""The engine's mark-push path does only what the push needs: it revalues only its instrument's
lives (and none for a repeated mark), and the risk monitor evaluates on a fill, on a move of the
open PnL past its share of the room to the nearest loss limit, or on its timer, not on every push.

Marks are fed through the engine's real sink (what the venue calls for every parsed push), so no
other push of the simulator (positions, account) can revalue a life meanwhile; the positions
themselves are real, opened on the simulator."""
from __future__ import annotations

import asyncio
import time
from decimal import Decimal as D
from typing import Any

import pytest

import core.risk.control
from core.engine import Engine
from core.engine.ports import now
from core.events import MarkPrice, PlaceOrder, TradingState
from core.model import Fill, OrderSide, PositionSnapshot
from core.settings.config import RiskSettings
from core.venue import OkxVenue
from tests.helpers.engine_helpers import BTC, BTC_ID, ETH, Rig, set_price, wait_for

pytestmark = pytest.mark.timeout(120)


def snapshots(rig: Rig, symbol: str) -> list[PositionSnapshot]:
    return [e for e in rig.events if isinstance(e, PositionSnapshot) and e.symbol == symbol]


async def passes(n: int = 3) -> None:
    """Let the event loop run the revaluation (one pass after the mark) and what it schedules."""
    for _ in range(n):
        await asyncio.sleep(0)


async def long_btc(rig: Rig, engine: Engine) -> None:
    assert (await engine.submit(PlaceOrder(BTC, OrderSide.BUY, D("10")))).ok  # 0.1 BTC near 60000
    await wait_for(lambda: len(engine.positions()) == 1, what="position")
    await rig.flush()
    await asyncio.sleep(0.2)


def mark(engine: Engine, symbol: str, px: str) -> None:
    engine.inbound.sink(MarkPrice(symbol, D(px), now()))


async def test_a_mark_of_another_instrument_does_not_revalue_a_position(rig: Rig) -> None:
    engine = await rig.start_engine()
    await long_btc(rig, engine)
    before = len(snapshots(rig, BTC))
    mark(engine, ETH, "3012.5")
    await passes()
    assert engine.mark(ETH) == D("3012.5")
    assert len(snapshots(rig, BTC)) == before, "an ETH mark revalued the BTC position"
    assert snapshots(rig, ETH) == []  # and nothing is valued for an instrument nobody holds
    mark(engine, BTC, "60123.4")  # its own instrument's mark does revalue it
    await passes()
    assert [s.mark_price for s in snapshots(rig, BTC)[before:]] == [D("60123.4")]


async def test_a_repeated_mark_revalues_nothing(rig: Rig) -> None:
    engine = await rig.start_engine()
    await long_btc(rig, engine)
    mark(engine, BTC, "60200")
    await passes()
    before = len(snapshots(rig, BTC))
    mark(engine, BTC, "60200")
    mark(engine, BTC, "60200.0")  # the same price, written otherwise
    await passes()
    assert len(snapshots(rig, BTC)) == before
    assert engine.mark(BTC) == D("60200")


async def test_small_mark_moves_do_not_run_the_risk_monitor_a_large_one_does(
        rig: Rig, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(core.risk.control, "MONITOR_S", 60.0)  # the timer's pass cannot help here
    engine = await rig.start_engine(risk=RiskSettings(daily_loss_limit=D("1000")))
    await long_btc(rig, engine)
    runs: list[int] = []
    evaluate = engine.control.open_net

    def counted() -> tuple[D, D]:
        runs.append(1)
        return evaluate()

    monkeypatch.setattr(engine.control, "open_net", counted)
    revalued = len(snapshots(rig, BTC))
    # 20 moves of 1 USD on 0.1 BTC: 2 USDT of PnL moves in all, far below a tenth of ~1000 USDT
    for i in range(20):
        mark(engine, BTC, str(60000 + (i % 2)))
        await passes()
    assert len(snapshots(rig, BTC)) - revalued >= 19, "the marks did not revalue the position"
    assert runs == [], f"the risk monitor ran {len(runs)} times on small mark moves"
    # a move of 1100 USD: 110 USDT of PnL, past a tenth of the room to the loss limit
    mark(engine, BTC, "61100")
    await passes()
    assert len(runs) == 1
    assert engine.risk_status().today_net > D("100")


async def test_a_mark_move_past_the_loss_limit_halts_without_the_timer_or_an_entry(
        rig: Rig, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(core.risk.control, "MONITOR_S", 60.0)  # the timer's pass cannot help here
    engine = await rig.start_engine(risk=RiskSettings(daily_loss_limit=D("50")))
    await long_btc(rig, engine)
    assert engine.trading_state is TradingState.RUNNING
    await set_price(rig.srv, "59400")  # 0.1 BTC x -600 = -60 USDT at mark: past the 50 USDT limit
    await wait_for(lambda: engine.trading_state is TradingState.HALTED, timeout=3, what="halt on the mark")


async def test_a_subscriber_leaving_during_a_publish_does_not_cost_the_others_the_event(rig: Rig) -> None:
    engine = await rig.start_engine()
    seen: list[object] = []
    unsubscribe = engine.subscribe(lambda e: unsubscribe() if isinstance(e, MarkPrice) else None)
    engine.subscribe(seen.append)
    mark(engine, ETH, "3000")
    mark(engine, ETH, "3001")
    assert [e.price for e in seen if isinstance(e, MarkPrice)] == [D("3000"), D("3001")]


def mark_push(px: str) -> dict[str, Any]:
    """One OKX mark-price push, as the public stream hands it to the venue's router."""
    return {"arg": {"channel": "mark-price", "instId": BTC_ID},
            "data": [{"instType": "SWAP", "instId": BTC_ID, "markPx": px, "ts": str(int(time.time() * 1000))}]}


def burst(engine: Engine, prices: tuple[str, ...]) -> None:
    """Marks read from the socket in one go: routed in the same loop pass, one after the other."""
    venue = engine.venue
    assert isinstance(venue, OkxVenue)
    for px in prices:
        venue.router.on_push(mark_push(px), "public")


async def test_a_burst_of_marks_revalues_once_at_the_last_mark_in_one_scheduled_callback(
        rig: Rig, monkeypatch: pytest.MonkeyPatch) -> None:
    """The router's burst end and the book's revaluation run in one handle of the loop (one
    Handle built and run per push, not two), and the burst still revalues the position once."""
    engine = await rig.start_engine()
    await long_btc(rig, engine)
    await passes()
    before = len(snapshots(rig, BTC))
    loop = asyncio.get_running_loop()
    scheduled: list[object] = []
    call_soon = loop.call_soon

    def counting(callback: Any, *args: Any, **kwargs: Any) -> asyncio.Handle:
        scheduled.append(callback)
        return call_soon(callback, *args, **kwargs)

    monkeypatch.setattr(loop, "call_soon", counting)
    burst(engine, ("60101", "60102", "60103", "60104", "60105"))
    monkeypatch.undo()
    assert len(scheduled) == 1, f"a burst of marks scheduled {scheduled}"
    await passes()
    assert [s.mark_price for s in snapshots(rig, BTC)[before:]] == [D("60105")]
    assert engine.mark(BTC) == D("60105")


async def test_a_fill_behind_a_burst_of_marks_sees_the_last_mark(rig: Rig) -> None:
    """Order: a fill that reaches the engine after a burst of marks, in the same loop pass, is
    applied after the burst's last mark is in the book, so the life it moves is valued at it."""
    engine = await rig.start_engine()
    await long_btc(rig, engine)
    await passes()
    before = len(snapshots(rig, BTC))
    held = engine.positions()[0].contracts
    burst(engine, ("60201", "60202", "60203"))
    size = engine.instruments[BTC].contract_size
    engine.inbound.sink(Fill("hot-path-1", "hot-path-1", "", BTC, OrderSide.BUY, D("1"), size,
                             D("60203"), D("0"), "USDT", now()))
    await wait_for(lambda: any(s.contracts == held + 1 for s in snapshots(rig, BTC)[before:]),
                   timeout=5, what="the fill's revaluation")
    after_fill = [s for s in snapshots(rig, BTC)[before:] if s.contracts == held + 1]
    assert after_fill[0].mark_price == D("60203")
