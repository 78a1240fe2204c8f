"""Fault injection on the WebSocket side (issue 6): connections dropped mid-fill and mid-funding;
malformed, truncated, out-of-order and duplicate pushes.

The connection, funding and duplicate-push faults run on both faces of the simulator (OKX v5 and
Bybit v5 with the native bybit venue: the ``venue`` param); the raw-frame ones send OKX's own
shapes and stay OKX-only. Each test ends with the journal checked against the exchange's own history (fills-history,
funding bills, positions-history, then the engine's reconcile) and with the message the trader
got (a Notice and/or one plain log line, never a traceback).
"""
from __future__ import annotations

import dataclasses
from decimal import Decimal as D

import orjson
import pytest

from core.events import LinkState, PlaceOrder, StreamStatus
from core.model import OrderSide
from core.sim.exchange import Push
from tests.helpers.engine_helpers import BTC, BTC_ID, VENUES, Rig, control, set_price, wait_for
from tests.helpers.fault_helpers import (
    LogCapture,
    Wire,
    assert_matches_exchange,
    is_fill,
    is_funding_settlement,
    notice_with,
    send_raw,
    wait_log,
    wait_notice,
)

pytestmark = [pytest.mark.timeout(60), pytest.mark.usefixtures("fast_resync")]
BOTH = pytest.mark.parametrize("venue", VENUES)


def _private_connects(rig: Rig) -> int:
    return sum(1 for e in rig.events if isinstance(e, StreamStatus) and e.stream == "private"
               and e.state is LinkState.CONNECTED and e.message != "latency")


# ------------------------------------------------------------------ dropped mid-fill

@BOTH
async def test_fill_push_lost_with_the_connection_arrives_once_by_backfill(rig: Rig, logs: LogCapture) -> None:
    """The engine's own order fills; the connection dies with the fill push in flight."""
    engine = await rig.start_engine()
    wire = Wire(rig.srv)
    wire.arm(is_fill, "lose")
    res = await engine.submit(PlaceOrder(BTC, OrderSide.BUY, rig.ct(10)))
    assert res.ok, res
    await wire.settle()
    assert wire.fired == 1
    await wait_log(logs, "RESYNC reconnect done: 1 fills")  # it came by backfill, not the stream
    await wait_for(lambda: [p.contracts for p in engine.positions()] == [rig.ct(10)], what="position")
    await wait_notice(rig, "private stream disconnected")
    notice_with(rig, "reconnected", "resyncing")
    # the life goes on normally: the outside client closes it
    await set_price(rig.srv, "60500")
    await rig.outside("sell", 10, reduce_only=True)
    (row,) = await rig.wait_trades(1)
    assert row["gross_pnl"] == D("50") and row["size_before"] == D("0.1")
    await assert_matches_exchange(rig, expect_fills=2, expect_closes=1)
    fill = next(f for f in rig.fills() if f["side"] == "buy")
    assert fill["origin"] == "console" and fill["order_id"] == res.order_ids[0]
    assert not logs.tracebacks()


@BOTH
async def test_fill_push_delivered_then_connection_cut_is_not_doubled(rig: Rig, logs: LogCapture) -> None:
    """The push arrives and the backfill after the reconnect sees the same fill again."""
    engine = await rig.start_engine()
    wire = Wire(rig.srv)
    wire.arm(is_fill, "deliver_then_drop")
    await rig.outside("buy", 20)
    await wire.settle()
    await wait_log(logs, "RESYNC reconnect done")
    await rig.flush()
    assert [p.contracts for p in engine.positions()] == [rig.ct(20)]
    # a partial close right after the reconnect, a full one with the connection cut again
    await rig.outside("sell", 5, reduce_only=True)
    wire.arm(is_fill, "lose")
    await rig.outside("sell", 15, reduce_only=True)
    await wire.settle()
    rows = await rig.wait_trades(2)
    assert [(r["size_before"], r["size_after"]) for r in rows] == [(D("0.2"), D("0.15")), (D("0.15"), D(0))]
    await assert_matches_exchange(rig, expect_fills=3, expect_closes=2)
    assert engine.positions() == []
    assert _private_connects(rig) == 3
    assert not logs.tracebacks()


# ------------------------------------------------------------------ dropped mid-funding

@BOTH
@pytest.mark.parametrize("mode", ["lose", "deliver_then_drop"])
async def test_funding_settlement_around_a_drop_is_journaled_once(rig: Rig, logs: LogCapture, mode: str) -> None:
    """The funding_fee push is lost with the connection (or arrives just before it is cut):
    the bill is journaled once and the close row carries it."""
    engine = await rig.start_engine()
    await rig.outside("buy", 50)
    await rig.wait_fills(1)
    wire = Wire(rig.srv)
    wire.arm(is_funding_settlement, mode)
    (bill,) = await control(rig.srv, "/sim/v1/funding", {"instId": BTC_ID, "rate": "0.0002"})
    await wire.settle()
    (row,) = await rig.wait_funding(1)
    if rig.bybit:  # the bill id a Bybit account sees is its Funding execution's execId
        (bill,) = await rig.funding_bills()
    assert row["bill_id"] == bill["billId"] and row["amount"] == D("-6")  # 0.5 x 60000 x 0.0002
    await wait_log(logs, "RESYNC reconnect done")
    await rig.flush()
    (snap,) = engine.positions()
    assert snap.funding_accrued == D("-6")
    await rig.outside("sell", 50, reduce_only=True)
    (close,) = await rig.wait_trades(1)
    assert close["funding"] == D("-6") and close["position_id"] == row["position_id"]
    await assert_matches_exchange(rig, expect_fills=2, expect_bills=1, expect_closes=1)
    await wait_notice(rig, "reconnected")
    assert not logs.tracebacks()


# ------------------------------------------------------------------ malformed pushes

@BOTH
async def test_truncated_and_garbage_frames_are_skipped_without_dropping_the_stream(
        rig: Rig, logs: LogCapture) -> None:
    engine = await rig.start_engine()
    await rig.outside("buy", 10)
    await rig.wait_fills(1)
    connects = _private_connects(rig)
    if rig.bybit:  # the same faults in Bybit's frames
        good: dict[str, object] = {"topic": "execution", "id": "1", "creationTime": 1, "data": [
            {"symbol": "BTCUSDT", "execId": "777", "orderId": "42", "execQty": "0.05", "execPrice": "1",
             "execType": "Trade", "side": "Buy", "execFee": "0", "execTime": "1"}]}
        public, exchange = '{"topic": "tickers.BTCUSDT", "type": "snapshot", "data": {', "Bybit"
    else:
        good = {"arg": {"channel": "orders", "instType": "SWAP", "uid": "1"},
                "data": [{"instId": BTC_ID, "ordId": "42", "tradeId": "777", "fillSz": "5", "fillPx": "1"}]}
        public, exchange = '{"arg": {"channel": "mark-price"}, "data": [', "OKX"
    text = orjson.dumps(good).decode()
    assert send_raw(rig.srv, "private", text[: len(text) // 2]) == 1  # truncated mid-fill
    assert send_raw(rig.srv, "private", "[1, 2, 3]") == 1  # valid JSON, not an exchange message
    assert send_raw(rig.srv, "public", public) == 1
    await wait_log(logs, "WS private skipped a malformed frame", "not valid JSON")
    await wait_log(logs, "WS private skipped a malformed frame", f"not a{'n' if exchange == 'OKX' else ''} "
                   f"{exchange} message object")
    await wait_log(logs, "WS public skipped a malformed frame")
    # the garbled fill is neither journaled nor lost: the engine resyncs from REST once
    await wait_notice(rig, "skipped an unreadable private frame push", "resyncing from REST")
    await wait_log(logs, "RESYNC retry done: 0 fills")
    assert len(logs.matching("RESYNC retry done")) == 1  # three bad frames, one resync
    # the streams stayed up and keep working
    await rig.outside("sell", 10, reduce_only=True)
    await rig.wait_trades(1)
    await assert_matches_exchange(rig, expect_fills=2, expect_closes=1)
    assert _private_connects(rig) == connects
    assert engine.links()["private"] is LinkState.CONNECTED
    assert "777" not in {f["fill_id"] for f in rig.fills()}
    assert not logs.tracebacks()


async def test_fill_push_missing_a_field_is_skipped_and_the_fill_backfilled_once(
        rig: Rig, logs: LogCapture) -> None:
    engine = await rig.start_engine()
    wire = Wire(rig.srv)
    wire.arm(is_fill, "corrupt", edit=lambda d: d.pop("fillSz"))
    await rig.ext.create_order(BTC, "market", "buy", 30)
    assert wire.fired == 1
    line = await wait_log(logs, "WS private skipped a malformed orders push", "missing field 'fillSz'")
    assert line.level == "WARNING"
    await wait_notice(rig, "skipped an unreadable private orders push")
    await wait_log(logs, "RESYNC", "done: 1 fills")  # the skipped push's fill, by backfill
    await wait_for(lambda: [p.contracts for p in engine.positions()] == [D("30")], what="position")
    await rig.ext.create_order(BTC, "market", "sell", 30, None, {"reduceOnly": True})
    await rig.wait_trades(1)
    await assert_matches_exchange(rig, expect_fills=2, expect_closes=1)
    assert not logs.tracebacks()


@BOTH
async def test_fill_before_its_placed_state_and_a_duplicate_fill_push(rig: Rig, logs: LogCapture) -> None:
    """The fill push overtakes the order's 'live' push, and the fill push arrives twice."""
    engine = await rig.start_engine()

    def reorder(pushes: list[Push]) -> list[Push]:
        out: list[Push] = []
        for p in pushes:
            out.append(p)
            if is_fill(p):
                live = dict(p.data, state="live", tradeId="", fillSz="", fillPx="", fillFee="",
                            fillTime="", accFillSz="0", avgPx="", uTime=p.data["cTime"])
                out += [p, dataclasses.replace(p, data=live)]  # duplicate fill, then 'placed'
        return out

    wire = Wire(rig.srv)
    wire.arm(is_fill, "custom", rewrite=reorder)
    res = await engine.submit(PlaceOrder(BTC, OrderSide.SELL, rig.ct(12)))
    assert res.ok, res
    await wait_for(lambda: [p.contracts for p in engine.positions()] == [rig.ct(12)], what="short")
    await rig.flush()
    (oid,) = res.order_ids
    events = sorted(o["event"] for o in rig.orders() if o["order_id"] == oid)
    assert events == ["fill", "filled", "placed"], events
    # a duplicate of the whole batch later on (stale retransmission): still nothing doubled
    wire.arm(is_fill, "duplicate")
    await rig.outside("buy", 12, reduce_only=True)
    (row,) = await rig.wait_trades(1)
    assert row["side"] == "short" and row["size_closed"] == D("0.12")
    await assert_matches_exchange(rig, expect_fills=2, expect_closes=1)
    assert engine.positions() == []
    assert not logs.matching("RESYNC retry")  # nothing was wrong enough to need a resync
    assert not logs.tracebacks()
