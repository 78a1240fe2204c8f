"""Engine commands against the simulator: orders with attached TP/SL, partial and full closes,
close-all, cancels, rejections, read-only mode, and averaging that the exchange rounds. The order,
close, TP/SL, cancel and changed-life tests run on both faces of the simulator (OKX v5, and
Bybit v5 through the native bybit venue)."""
from __future__ import annotations

from decimal import Decimal as D

import pytest

from core.events import (
    CancelOrder,
    CloseAll,
    ClosePosition,
    Notice,
    NoticeLevel,
    PlaceOrder,
)
from core.journal import read_positions
from core.model import OrderSide, Origin
from tests.helpers.engine_helpers import (
    BTC,
    BTC_ID,
    ETH,
    VENUES,
    Rig,
    assert_rows_consistent,
    exchange_position,
    net_sum,
    set_price,
    sim_state,
    wait_for,
)

pytestmark = pytest.mark.timeout(90)
BOTH = pytest.mark.parametrize("venue", VENUES)


async def realized(rig: Rig, inst: str) -> D:
    """The exchange's realized PnL of the one closed life of ``inst``: OKX positions-history
    realizedPnl; Bybit, the closed-PnL records of the symbol (no funding in these tests)."""
    if rig.bybit:
        symbol = inst.replace("-USDT-SWAP", "USDT")
        return sum((D(c["closedPnl"]) for c in await rig.closed_pnl() if c["symbol"] == symbol), D(0))
    (hist,) = await rig.positions_history(inst)
    return D(hist["realizedPnl"])


@BOTH
async def test_place_partial_close_and_close_all_flatten_the_exchange(rig: Rig) -> None:
    engine = await rig.start_engine()
    res = await engine.submit(PlaceOrder(BTC, OrderSide.BUY, rig.ct(50)))
    assert res.ok and len(res.order_ids) == 1, res
    res = await engine.submit(PlaceOrder(ETH, OrderSide.SELL, rig.ct(20, ETH)), origin=Origin.STRATEGY)
    assert res.ok, res
    await wait_for(lambda: len(engine.positions()) == 2, what="two positions")
    assert await exchange_position(rig) == rig.ct(50)
    await rig.flush()
    snaps = {(r["symbol"], r["contracts"]) for r in read_positions(rig.journal_dir)}
    assert {(BTC, rig.ct(50)), (ETH, rig.ct(20, ETH))} <= snaps
    assert await exchange_position(rig, "ETH-USDT-SWAP") == -rig.ct(20, ETH)

    await set_price(rig.srv, "60600")
    res = await engine.submit(ClosePosition(BTC, "net", rig.ct(20)))
    assert res.ok and "0.2" in res.message, res
    await wait_for(lambda: any(p.contracts == rig.ct(30) for p in engine.positions()), what="30 left")
    assert await exchange_position(rig) == rig.ct(30)
    # the estimate for the rest matches the pane's unrealized PnL at the mark
    assert engine.estimate_close_pnl(BTC, "net", rig.ct(30)) == D("180")

    res = await engine.submit(CloseAll())
    assert res.ok, res
    await wait_for(lambda: engine.positions() == [], what="flat")
    state = await sim_state(rig.srv)
    assert state["positions"] == []

    trades = await rig.wait_trades(3)
    await rig.flush()
    assert_rows_consistent(trades)
    by_symbol: dict[str, list[dict]] = {}
    for r in trades:
        by_symbol.setdefault(r["symbol"], []).append(r)
    btc, eth = by_symbol[BTC], by_symbol[ETH]
    assert [r["reason"] for r in btc] == ["manual", "manual"]
    assert [r["reason"] for r in eth] == ["manual"]  # closed by the console's CloseAll
    assert [(r["size_before"], r["size_after"]) for r in btc] == [(D("0.5"), D("0.3")), (D("0.3"), D(0))]
    assert btc[0]["gross_pnl"] == D("120")  # 0.2 x 600
    assert net_sum(btc) == await realized(rig, BTC_ID)
    assert net_sum(eth) == await realized(rig, "ETH-USDT-SWAP")
    origins = [f["origin"] for f in rig.fills() if f["symbol"] == ETH]
    assert origins == ["strategy", "console"]
    assert all(f["client_order_id"].startswith(("pdc", "pds")) for f in rig.fills())


@BOTH
async def test_attached_tp_and_sl_fire_on_the_exchange(rig: Rig) -> None:
    engine = await rig.start_engine()
    res = await engine.submit(PlaceOrder(BTC, OrderSide.BUY, rig.ct(10), take_profit=D("61000"),
                                         stop_loss=D("59000")))
    assert res.ok, res
    await wait_for(lambda: len(engine.positions()) == 1, what="position")
    algos = (await sim_state(rig.srv))["liveAlgos"]
    if rig.bybit:  # a TakeProfit and a StopLoss conditional order
        assert sorted((a["stopOrderType"], a["triggerPrice"]) for a in algos) == [
            ("StopLoss", "59000"), ("TakeProfit", "61000")]
    else:
        assert len(algos) == 1 and algos[0]["tpTriggerPx"] == "61000" and algos[0]["slTriggerPx"] == "59000"
    await set_price(rig.srv, "58900")
    (row,) = await rig.wait_trades(1)
    assert row["reason"] == "sl" and row["exit_price"] == D("58900")
    assert row["net_pnl"] == await realized(rig, BTC_ID)

    res = await engine.submit(PlaceOrder(BTC, OrderSide.SELL, rig.ct(10), take_profit=D("58000"),
                                         stop_loss=D("60000")))
    assert res.ok, res
    await set_price(rig.srv, "57950")
    rows = await rig.wait_trades(2)
    assert rows[1]["reason"] == "tp" and rows[1]["side"] == "short"
    assert rows[1]["gross_pnl"] == D("95")  # 0.1 BTC x (58900 - 57950)


async def test_rejected_order_is_one_message_and_the_engine_keeps_running(rig: Rig) -> None:
    engine = await rig.start_engine()
    res = await engine.submit(PlaceOrder(BTC, OrderSide.BUY, D("10000")))  # 100 BTC on 10000 USDT
    assert not res.ok
    assert "Insufficient" in res.message and "51008" in res.message and "\n" not in res.message
    notices = [e for e in rig.events if isinstance(e, Notice) and e.level is NoticeLevel.ERROR]
    assert notices and notices[-1].text == res.message
    res = await engine.submit(PlaceOrder(BTC, OrderSide.BUY, D("0.001")))
    assert not res.ok and "minimum" in res.message
    res = await engine.submit(PlaceOrder("DOGE/USDT:USDT", OrderSide.BUY, D("1")))
    assert not res.ok and "DOGE" in res.message
    res = await engine.submit(ClosePosition(BTC))
    assert not res.ok and "no open" in res.message
    res = await engine.submit(CancelOrder(BTC, "12345"))
    assert not res.ok and "12345" in res.message
    # still trading
    res = await engine.submit(PlaceOrder(BTC, OrderSide.BUY, D("1")))
    assert res.ok, res
    await wait_for(lambda: len(engine.positions()) == 1, what="position")
    assert await exchange_position(rig) == D("1")


@BOTH
async def test_limit_order_cancel(rig: Rig) -> None:
    engine = await rig.start_engine()
    res = await engine.submit(PlaceOrder(BTC, OrderSide.BUY, rig.ct(5), order_type="limit",
                                         price=D("55000")))
    assert res.ok, res
    (oid,) = res.order_ids
    key = "orderId" if rig.bybit else "ordId"
    assert [o[key] for o in (await sim_state(rig.srv))["openOrders"]] == [oid]
    res = await engine.submit(CancelOrder(BTC, oid))
    assert res.ok, res
    assert (await sim_state(rig.srv))["openOrders"] == []
    await rig.flush()
    events = [(o["order_id"], o["event"]) for o in rig.orders()]
    assert (oid, "placed") in events and (oid, "canceled") in events


async def test_read_only_refuses_commands(rig: Rig) -> None:
    engine = await rig.start_engine(read_only=True)
    res = await engine.submit(PlaceOrder(BTC, OrderSide.BUY, D("1")))
    assert not res.ok and "read-only" in res.message
    assert (await sim_state(rig.srv))["positions"] == []


async def test_averaging_the_exchange_rounds_is_confirmed_from_positions_history(rig: Rig) -> None:
    """Three buys whose average is not a terminating decimal: the exchange rounds its average
    entry to 1e-12, the ledger keeps the exact cost; confirmed rows carry the exchange's PnL."""
    engine = await rig.start_engine()
    for px in ("60000", "60000.1", "60000.3"):
        await set_price(rig.srv, px)
        await rig.ext.create_order(BTC, "market", "buy", 1)
    await wait_for(lambda: any(p.contracts == 3 for p in engine.positions()), what="3 contracts")
    await set_price(rig.srv, "61000")
    await rig.ext.create_order(BTC, "market", "sell", 1, None, {"reduceOnly": True})
    (first,) = await rig.wait_trades(1)
    (hist,) = await rig.positions_history()
    assert first["source"] == "exchange"
    assert first["gross_pnl"] == D(hist["pnl"])  # the exchange's rounding, not the ledger's
    await rig.ext.create_order(BTC, "market", "sell", 2, None, {"reduceOnly": True})
    rows = await rig.wait_trades(2)
    (hist,) = await rig.positions_history()
    assert net_sum(rows) == D(hist["realizedPnl"])
    assert_rows_consistent(rows)


@BOTH
async def test_close_refused_when_the_confirmed_life_was_replaced(rig: Rig) -> None:
    """A close bound to the life the trader saw is refused once that life is gone (closed and
    reopened from outside); bound to the life open now, it goes through."""
    engine = await rig.start_engine()
    await rig.outside("buy", 10)
    await wait_for(lambda: [p.contracts for p in engine.positions()] == [rig.ct(10)], what="long 10")
    (seen,) = engine.positions()
    await rig.outside("sell", 12)  # flips it short 2: a new life
    await wait_for(lambda: [p.contracts for p in engine.positions()] == [rig.ct(2)], what="short 2")
    (now_open,) = engine.positions()
    assert now_open.position_id != seen.position_id

    res = await engine.submit(ClosePosition(BTC, "net", None, seen.position_id))
    assert not res.ok and "changed since you confirmed" in res.message, res
    assert seen.position_id in res.message and f"short of {rig.ct(2)} contracts" in res.message, res
    assert await exchange_position(rig) == -rig.ct(2)  # nothing sent

    res = await engine.submit(ClosePosition(BTC, "net", None, now_open.position_id))
    assert res.ok, res
    await wait_for(lambda: engine.positions() == [], what="flat")
    assert await exchange_position(rig) == 0
