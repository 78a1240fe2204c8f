"""Trading control on the simulator, through the real engine and adapter: the daily loss limit and
drawdown halt (and flatten), pause and resume, the kill switch (and halted across a restart), each
pre-trade limit refusing with one line naming it, TP/SL moves, and the risk journal rows. Pause,
the kill switch, the limits and TP/SL moves run on both faces of the simulator (OKX v5, and Bybit
v5 through the native bybit venue: TP and SL are two conditional orders there)."""
from __future__ import annotations

import asyncio
from datetime import time
from decimal import Decimal as D
from typing import Any

import pytest

from core.engine import Engine
from core.events import (
    CancelOrder,
    ClosePosition,
    KillSwitch,
    PauseStrategy,
    PlaceOrder,
    ResumeTrading,
    RiskEvent,
    RiskEventKind,
    RiskStatus,
    SetTpSl,
    TradingState,
)
from core.journal import read_rows
from core.model import OrderSide, OrderType, Origin, PosSide
from core.settings.config import RiskSettings
from tests.helpers.engine_helpers import (
    BTC,
    BTC_ID,
    ETH,
    VENUES,
    Rig,
    exchange_position,
    set_price,
    sim_state,
    wait_for,
)
from tests.helpers.fault_helpers import LogCapture

pytestmark = pytest.mark.timeout(120)
BOTH = pytest.mark.parametrize("venue", VENUES)


def risk_rows(rig: Rig) -> list[dict[str, Any]]:
    return read_rows(rig.journal_dir, "risk")


async def exchange_orders(rig: Rig) -> list[dict[str, Any]]:
    return list((await sim_state(rig.srv))["openOrders"])


async def exchange_algos(rig: Rig) -> list[dict[str, Any]]:
    return list((await sim_state(rig.srv))["liveAlgos"])


async def tp_sl_at_exchange(rig: Rig) -> tuple[str, str, str]:
    """(take-profit, stop-loss, closing side) of the one position's TP/SL at the exchange, "" for
    a leg not set: OKX, one algo with both; Bybit, a TakeProfit and/or a StopLoss order."""
    live = await exchange_algos(rig)
    if rig.bybit:
        kinds = {a["stopOrderType"]: a for a in live}
        assert len(kinds) == len(live) <= 2, live
        return (kinds["TakeProfit"]["triggerPrice"] if "TakeProfit" in kinds else "",
                kinds["StopLoss"]["triggerPrice"] if "StopLoss" in kinds else "",
                live[0]["side"].lower())
    (algo,) = live
    return algo["tpTriggerPx"], algo["slTriggerPx"], algo["side"]


async def exchange_order_count(rig: Rig) -> int:
    """Every order the exchange ever took (orders-history holds the filled and canceled ones)."""
    if rig.bybit:
        query = {"category": "linear", "settleCoin": "USDT", "limit": 50}
        done = (await rig.ext.privateGetV5OrderHistory(query))["result"]["list"]
        live = (await rig.ext.privateGetV5OrderRealtime(query))["result"]["list"]
        return len(done) + len(live)
    resp = await rig.ext.private_get_trade_orders_history({"instType": "SWAP", "limit": "100"})
    pending = await rig.ext.private_get_trade_orders_pending({"instType": "SWAP"})
    return len(resp["data"]) + len(pending["data"])


@BOTH
async def test_daily_loss_limit_halts_flattens_and_blocks_entries_but_not_closes(rig: Rig) -> None:
    engine = await rig.start_engine(risk=RiskSettings(daily_loss_limit=D("50"), flatten_on_halt=True))
    assert engine.trading_state is TradingState.RUNNING
    assert (await engine.submit(PlaceOrder(BTC, OrderSide.BUY, rig.ct(10)), origin=Origin.STRATEGY)).ok
    # a resting entry order far from the price: the halt must cancel it
    assert (await engine.submit(PlaceOrder(BTC, OrderSide.BUY, rig.ct(1), OrderType.LIMIT, D("50000")))).ok
    await wait_for(lambda: len(engine.positions()) == 1, what="position")
    assert len(await exchange_orders(rig)) == 1
    loop = asyncio.get_running_loop()
    await set_price(rig.srv, "59400")  # 0.1 BTC x -600 = -60 USDT (+ fees): past the 50 USDT limit
    moved = loop.time()
    await wait_for(lambda: engine.trading_state is TradingState.HALTED, timeout=5, what="halt")
    assert loop.time() - moved < 1.0, "the halt took more than a second"
    await wait_for(lambda: engine.positions() == [], timeout=10, what="flattened")
    assert await exchange_position(rig) == 0
    state = await sim_state(rig.srv)
    assert state["openOrders"] == [] and state["positions"] == []
    halts = [e for e in rig.events if isinstance(e, RiskEvent) and e.event is RiskEventKind.HALT]
    assert len(halts) == 1 and halts[0].rule == "daily_loss_limit" and halts[0].limit == D("50")
    assert any(isinstance(e, RiskStatus) and e.state is TradingState.HALTED for e in rig.events)

    # the price keeps moving: no new entry leaves, strategy or manual
    before = await exchange_order_count(rig)
    for px in ("59500", "60500", "61000"):
        await set_price(rig.srv, px)
        res = await engine.submit(PlaceOrder(BTC, OrderSide.BUY, rig.ct(1)), origin=Origin.STRATEGY)
        assert not res.ok and res.message.startswith("RISK REFUSED halted")
        res = await engine.submit(PlaceOrder(ETH, OrderSide.SELL, rig.ct(1, ETH)))
        assert not res.ok
    assert await exchange_order_count(rig) == before

    # a position opened behind the engine's back can still be closed by hand
    await rig.outside("buy", 2)
    await wait_for(lambda: len(engine.positions()) == 1, what="outside position")
    assert (await engine.submit(ClosePosition(BTC))).ok
    await wait_for(lambda: engine.positions() == [], what="closed by hand")
    assert await exchange_position(rig) == 0
    # resume is refused while the loss is still past the limit
    res = await engine.submit(ResumeTrading())
    assert not res.ok and "daily loss limit" in res.message
    await rig.flush()
    rows = risk_rows(rig)
    assert [r["event"] for r in rows].count("halt") == 1
    assert any(r["event"] == "flatten" for r in rows)
    assert all(r["state"] == "halted" for r in rows if r["event"] in ("halt", "flatten", "refused"))


@BOTH
async def test_drawdown_from_the_days_peak_halts_without_flatten(rig: Rig, logs: LogCapture) -> None:
    engine = await rig.start_engine(risk=RiskSettings(max_drawdown=D("40")))
    assert (await engine.submit(PlaceOrder(BTC, OrderSide.BUY, rig.ct(10)))).ok
    await wait_for(lambda: len(engine.positions()) == 1, what="position")
    await set_price(rig.srv, "60500")  # +50 at mark: the day's peak
    await wait_for(lambda: engine.risk_status().today_net > D("40"), what="peak")
    await set_price(rig.srv, "60050")  # 45 below the peak
    await wait_for(lambda: engine.trading_state is TradingState.HALTED, timeout=3, what="halt")
    assert engine.risk_status().state is TradingState.HALTED
    (line,) = [x.message for x in logs.lines if "RISK HALT" in x.message]
    assert line.startswith("RISK HALT max_drawdown: down 45") and "max drawdown 40 USDT" in line
    assert await exchange_position(rig) == rig.ct(10)  # no flatten_on_halt: the position stays
    res = await engine.submit(PlaceOrder(BTC, OrderSide.BUY, rig.ct(1)))
    assert not res.ok and "halted" in res.message
    assert (await engine.submit(PlaceOrder(BTC, OrderSide.SELL, rig.ct(4), reduce_only=True))).ok
    await wait_for(lambda: any(p.contracts == rig.ct(6) for p in engine.positions()), what="reduced")


@BOTH
async def test_pause_blocks_entries_lets_exits_through_and_resume_trades_again(rig: Rig) -> None:
    engine = await rig.start_engine()
    res = await engine.submit(PlaceOrder(BTC, OrderSide.BUY, rig.ct(5), take_profit=D("61000"),
                                         stop_loss=D("59000")))
    assert res.ok
    await wait_for(lambda: len(engine.positions()) == 1, what="position")
    assert (await engine.submit(PauseStrategy())).ok
    assert engine.trading_state is TradingState.PAUSED
    for origin in (Origin.STRATEGY, Origin.CONSOLE):
        res = await engine.submit(PlaceOrder(BTC, OrderSide.BUY, rig.ct(1)), origin=origin)
        assert not res.ok and res.message.startswith("RISK REFUSED paused")
    assert await exchange_position(rig) == rig.ct(5)
    # exits go: a TP/SL move, a reduce-only order, a partial close, and the exchange's own SL
    assert (await engine.submit(SetTpSl(BTC, stop_loss=D("59500")))).ok
    assert (await engine.submit(PlaceOrder(BTC, OrderSide.SELL, rig.ct(1), reduce_only=True))).ok
    assert (await engine.submit(ClosePosition(BTC, contracts=rig.ct(1)))).ok
    await wait_for(lambda: any(p.contracts == rig.ct(3) for p in engine.positions()), what="3 left")
    await set_price(rig.srv, "59400")
    await wait_for(lambda: engine.positions() == [], what="stopped out while paused")
    res = await engine.submit(ResumeTrading(), origin=Origin.STRATEGY)
    assert not res.ok and engine.trading_state is TradingState.PAUSED  # only the trader resumes
    assert (await engine.submit(ResumeTrading())).ok
    assert engine.trading_state is TradingState.RUNNING
    assert (await engine.submit(PlaceOrder(BTC, OrderSide.BUY, rig.ct(2)), origin=Origin.STRATEGY)).ok
    await wait_for(lambda: len(engine.positions()) == 1, what="trading again")
    await rig.flush()
    events = [r["event"] for r in risk_rows(rig)]
    assert events == ["pause", "refused", "refused", "resume"]


@BOTH
async def test_kill_switch_leaves_the_exchange_flat_and_stays_halted_after_a_restart(
        rig: Rig, logs: LogCapture) -> None:
    engine = await rig.start_engine()
    assert (await engine.submit(PlaceOrder(BTC, OrderSide.BUY, rig.ct(3), take_profit=D("62000"),
                                           stop_loss=D("58000")))).ok
    assert (await engine.submit(PlaceOrder(ETH, OrderSide.SELL, rig.ct(5, ETH)))).ok
    assert (await engine.submit(PlaceOrder(BTC, OrderSide.BUY, rig.ct(1), OrderType.LIMIT, D("55000")))).ok
    # a plain trigger algo and a resting order from another app count too
    if rig.bybit:  # Bybit's trigger order: a conditional market buy
        await rig.ext.create_order(BTC, "market", "buy", rig.amt(1), None,
                                   {"triggerPrice": "65000", "triggerDirection": "ascending"})
    else:
        await rig.ext.private_post_trade_order_algo({
            "instId": BTC_ID, "tdMode": "cross", "side": "buy", "ordType": "trigger", "sz": "1",
            "triggerPx": "65000", "orderPx": "-1"})
    await rig.ext.create_order(ETH, "limit", "buy", rig.amt(1, ETH), 2000)
    await wait_for(lambda: len(engine.positions()) == 2, what="positions")
    # OKX: the attached TP+SL is one algo; Bybit: a TakeProfit and a StopLoss order
    assert len(await exchange_algos(rig)) == (3 if rig.bybit else 2) and len(await exchange_orders(rig)) == 2
    res = await engine.submit(KillSwitch())
    assert res.ok, res
    state = await sim_state(rig.srv)
    assert state["positions"] == [] and state["openOrders"] == [] and state["liveAlgos"] == []
    assert engine.trading_state is TradingState.HALTED
    assert any("KILL SWITCH" in line.message for line in logs.lines)
    await rig.flush()
    await rig.stop_engine()

    engine = await rig.start_engine()
    assert engine.trading_state is TradingState.HALTED
    res = await engine.submit(PlaceOrder(BTC, OrderSide.BUY, rig.ct(1)))
    assert not res.ok and "halted" in res.message
    assert (await engine.submit(PauseStrategy())).ok is False  # halted is not paused
    assert (await engine.submit(ResumeTrading())).ok
    assert engine.trading_state is TradingState.RUNNING
    assert (await engine.submit(PlaceOrder(BTC, OrderSide.BUY, rig.ct(1)))).ok
    await rig.flush()
    await rig.stop_engine()
    engine = await rig.start_engine()
    assert engine.trading_state is TradingState.RUNNING  # the resume was persisted too
    await rig.flush()
    rows = risk_rows(rig)
    assert [r["event"] for r in rows if r["event"] != "refused"] == ["kill", "kill", "resume"]
    keys = [(r["ts"], r["event"], r["rule"]) for r in rows]
    assert len(keys) == len(set(keys))


@BOTH
async def test_each_limit_refuses_the_order_that_would_breach_it_with_one_line(
        rig: Rig, logs: LogCapture) -> None:
    engine = await rig.start_engine(risk=RiskSettings(
        max_order_notional=D("3000"), max_position_notional=D("4000"),
        max_total_notional=D("5000"), max_open_positions=2, max_orders_per_minute=5))
    await set_price(rig.srv, "60000", BTC_ID)
    await wait_for(lambda: engine.mark(BTC) is not None and engine.mark(ETH) is not None, what="marks")

    async def refused(cmd: PlaceOrder, rule: str) -> None:
        res = await engine.submit(cmd)
        assert not res.ok and res.message.startswith(f"RISK REFUSED {rule}:"), res
        assert "\n" not in res.message

    await refused(PlaceOrder(BTC, OrderSide.BUY, rig.ct(6)), "max_order_notional")  # 3,600 USDT
    assert (await engine.submit(PlaceOrder(BTC, OrderSide.BUY, rig.ct(4)))).ok  # 2,400
    await wait_for(lambda: len(engine.positions()) == 1, what="position")
    await refused(PlaceOrder(BTC, OrderSide.BUY, rig.ct(3)), "max_position_notional")  # 4,200
    assert (await engine.submit(PlaceOrder(ETH, OrderSide.SELL, rig.ct(5, ETH)))).ok  # 1,500 -> 3,900
    await wait_for(lambda: len(engine.positions()) == 2, what="two positions")
    await refused(PlaceOrder(ETH, OrderSide.SELL, rig.ct(4, ETH)), "max_total_notional")  # 5,100
    # an order that only reduces is not held to the exposure limits
    assert (await engine.submit(PlaceOrder(BTC, OrderSide.SELL, rig.ct(1)))).ok
    assert (await engine.submit(PlaceOrder(BTC, OrderSide.SELL, rig.ct(1)))).ok
    assert (await engine.submit(PlaceOrder(ETH, OrderSide.BUY, rig.ct(1, ETH)))).ok
    await refused(PlaceOrder(BTC, OrderSide.BUY, rig.ct(1)), "max_orders_per_minute")  # the 6th entry in a minute
    # closes are never refused, whatever the limits
    assert (await engine.submit(ClosePosition(BTC))).ok
    assert (await engine.submit(ClosePosition(ETH))).ok
    await wait_for(lambda: engine.positions() == [], what="flat")
    await rig.flush()
    rules = [r["rule"] for r in risk_rows(rig)]
    assert rules == ["max_order_notional", "max_position_notional", "max_total_notional",
                     "max_orders_per_minute"]
    lines = [line.message for line in logs.lines if "RISK REFUSED" in line.message]
    assert len(lines) == 4
    assert "RISK REFUSED max_order_notional: order 3,600 USDT > limit 3,000 USDT" in lines[0]


@BOTH
async def test_max_open_positions(rig: Rig) -> None:
    engine = await rig.start_engine(risk=RiskSettings(max_open_positions=1))
    assert (await engine.submit(PlaceOrder(BTC, OrderSide.BUY, rig.ct(1)))).ok
    await wait_for(lambda: len(engine.positions()) == 1, what="position")
    res = await engine.submit(PlaceOrder(ETH, OrderSide.BUY, rig.ct(1, ETH)))
    assert not res.ok and res.message == ("RISK REFUSED max_open_positions: ETH/USDT:USDT would be "
                                          "position 2 > limit 1")
    assert (await engine.submit(PlaceOrder(BTC, OrderSide.BUY, rig.ct(1)))).ok  # adding to the open one


@BOTH
async def test_set_tp_sl_moves_the_stop_on_the_exchange_and_it_fires_there(rig: Rig) -> None:
    engine = await rig.start_engine()
    assert (await engine.submit(PlaceOrder(BTC, OrderSide.BUY, rig.ct(10), take_profit=D("62000"),
                                           stop_loss=D("58000")))).ok
    await wait_for(lambda: len(engine.positions()) == 1, what="position")
    (pos,) = engine.positions()
    # the exchange's position shows its close algos (OKX closeOrderAlgo): the T dialog prefills them
    await wait_for(lambda: engine.tp_sl(BTC, PosSide.NET) == (D("62000"), D("58000")), what="TP/SL shown")
    res = await engine.submit(SetTpSl(BTC, stop_loss=D("59700"), position_id="another life"))
    assert not res.ok and "changed" in res.message
    res = await engine.submit(SetTpSl(BTC, stop_loss=D("59700"), position_id=pos.position_id))
    assert res.ok, res
    assert (await tp_sl_at_exchange(rig))[:2] == ("62000", "59700")  # TP kept
    assert engine.tp_sl(BTC, PosSide.NET) == (D("62000"), D("59700"))
    await set_price(rig.srv, "59800")
    await asyncio.sleep(0.3)
    assert await exchange_position(rig) == rig.ct(10)  # the old stop (58000) would not, the new not yet
    await set_price(rig.srv, "59690")
    (row,) = await rig.wait_trades(1)
    assert row["reason"] == "sl" and row["exit_price"] == D("59690")
    assert await exchange_algos(rig) == []
    # a position without any TP/SL gets one
    assert (await engine.submit(PlaceOrder(BTC, OrderSide.SELL, rig.ct(2)))).ok
    await wait_for(lambda: len(engine.positions()) == 1, what="short")
    assert (await engine.submit(SetTpSl(BTC, take_profit=D("59000")))).ok
    assert await tp_sl_at_exchange(rig) == ("59000", "", "buy")


async def test_risk_status_and_today_net_seeded_from_the_journal(rig: Rig) -> None:
    engine = await rig.start_engine(risk=RiskSettings(daily_loss_limit=D("1000"), day_start=time(0, 0)))
    assert (await engine.submit(PlaceOrder(BTC, OrderSide.BUY, D("10")))).ok
    await wait_for(lambda: len(engine.positions()) == 1, what="position")
    await set_price(rig.srv, "59900")
    assert (await engine.submit(ClosePosition(BTC))).ok
    (row,) = await rig.wait_trades(1)
    await wait_for(lambda: engine.risk_status().today_net == row["net_pnl"], what="realized counted")
    await rig.stop_engine()
    engine = await rig.start_engine(risk=RiskSettings(daily_loss_limit=D("1000")))
    status = engine.risk_status()
    assert status.today_net == row["net_pnl"] and status.daily_loss_limit == D("1000")
    assert status.state is TradingState.RUNNING and status.exposure == 0


async def test_a_read_only_viewer_never_halts_nor_acts(rig: Rig) -> None:
    await rig.ext.create_order(BTC, "market", "buy", 10)
    engine = await rig.start_engine(read_only=True, risk=RiskSettings(daily_loss_limit=D("10"),
                                                                      flatten_on_halt=True))
    await wait_for(lambda: len(engine.positions()) == 1, what="position seen")
    await set_price(rig.srv, "59000")
    await wait_for(lambda: engine.risk_status().today_net < D("-10"), what="loss seen")
    await asyncio.sleep(0.5)
    assert engine.trading_state is TradingState.RUNNING
    assert await exchange_position(rig) == D("10")


async def test_cancel_is_never_refused_while_halted(rig: Rig) -> None:
    engine: Engine = await rig.start_engine()
    res = await engine.submit(PlaceOrder(BTC, OrderSide.BUY, D("1"), OrderType.LIMIT, D("50000")))
    assert res.ok
    assert (await engine.submit(KillSwitch())).ok
    assert await exchange_orders(rig) == []
    res = await engine.submit(CancelOrder(BTC, res.order_ids[0]))  # already gone: the exchange says so
    assert "RISK REFUSED" not in res.message


async def test_risk_status_is_published_on_change_at_most_a_few_times_a_second(rig: Rig) -> None:
    engine = await rig.start_engine(risk=RiskSettings(daily_loss_limit=D("5000")))
    assert (await engine.submit(PlaceOrder(BTC, OrderSide.BUY, D("10")))).ok
    await wait_for(lambda: len(engine.positions()) == 1, what="position")
    await asyncio.sleep(0.5)
    start = len(rig.events)
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    for i in range(40):  # 40 marks in about 2 s, each moving today's net
        await set_price(rig.srv, str(60000 + (i % 7) * 10 + i))
        await asyncio.sleep(0.05)
    elapsed = loop.time() - t0
    statuses = [e for e in rig.events[start:] if isinstance(e, RiskStatus)]
    assert 2 <= len(statuses) <= int(elapsed * 4) + 2, (len(statuses), elapsed)
    assert statuses[-1].exposure > 0 and statuses[-1].daily_loss_limit == D("5000")
    await asyncio.sleep(0.6)
    assert engine.risk_status().today_net == engine.control.today_net


async def test_kill_switch_re_reads_the_exchange_and_retries_once(rig: Rig) -> None:
    engine = await rig.start_engine()
    assert (await engine.submit(PlaceOrder(BTC, OrderSide.BUY, D("3")))).ok
    await rig.ext.private_post_trade_order_algo({  # a trigger: closing the position leaves it live
        "instId": BTC_ID, "tdMode": "cross", "side": "buy", "ordType": "trigger", "sz": "1",
        "triggerPx": "65000", "orderPx": "-1"})
    await wait_for(lambda: len(engine.positions()) == 1, what="position")
    venue: Any = engine.venue
    real = venue.cancel_triggers
    calls: list[int] = []

    async def lost_first(algos: Any) -> None:  # the first cancel "succeeds" but nothing happened
        calls.append(len(algos))
        if len(calls) > 1:
            await real(algos)

    venue.cancel_triggers = lost_first
    res = await engine.submit(KillSwitch())
    assert res.ok, res
    assert len(calls) == 2
    state = await sim_state(rig.srv)
    assert state["positions"] == [] and state["openOrders"] == [] and state["liveAlgos"] == []


async def test_pause_survives_a_restart_until_the_trader_resumes(rig: Rig, logs: LogCapture) -> None:
    """Issue 20: pause, like halted, is kept in state.json; a restart comes back paused."""
    engine = await rig.start_engine()
    assert (await engine.submit(PauseStrategy())).ok
    await rig.flush()
    await rig.stop_engine()
    engine = await rig.start_engine()
    assert engine.trading_state is TradingState.PAUSED
    assert logs.one("RISK PAUSE still in force from a previous run").level == "WARNING"
    res = await engine.submit(PlaceOrder(BTC, OrderSide.BUY, D("1")), origin=Origin.STRATEGY)
    assert not res.ok and res.message.startswith("RISK REFUSED paused")
    assert (await engine.submit(ResumeTrading())).ok
    await rig.flush()
    await rig.stop_engine()
    engine = await rig.start_engine()
    assert engine.trading_state is TradingState.RUNNING
    assert (await engine.submit(PlaceOrder(BTC, OrderSide.BUY, D("1")), origin=Origin.STRATEGY)).ok



@pytest.mark.parametrize("how", ["kill", "pause"])
async def test_a_deleted_state_file_does_not_lift_a_halt_or_a_pause(rig: Rig, logs: LogCapture, how: str) -> None:
    """state.json deleted after a kill switch (or a pause): the next start rebuilds the state from
    the newest risk journal row instead of running, so the strategy does not trade again."""
    engine = await rig.start_engine()
    assert (await engine.submit(KillSwitch() if how == "kill" else PauseStrategy())).ok
    want = TradingState.HALTED if how == "kill" else TradingState.PAUSED
    assert engine.trading_state is want
    await rig.flush()
    await rig.stop_engine()
    (rig.journal_dir / "state.json").unlink()
    engine = await rig.start_engine()
    assert engine.trading_state is want
    line = logs.one("still in force from a previous run", "state.json was missing: rebuilt from risk_")
    assert line.level == "WARNING"
    res = await engine.submit(PlaceOrder(BTC, OrderSide.BUY, D("1")), origin=Origin.STRATEGY)
    assert not res.ok and want.value in res.message
    assert await exchange_position(rig) == 0
    # the trader's resume ends it, and is itself kept (rebuilt again without the file)
    assert (await engine.submit(ResumeTrading())).ok
    await rig.flush()
    await rig.stop_engine()
    (rig.journal_dir / "state.json").unlink()
    engine = await rig.start_engine()
    assert engine.trading_state is TradingState.RUNNING
