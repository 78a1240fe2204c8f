"""Closes forced by the exchange beyond a plain liquidation: ADL and partial liquidation.

The engine watches the demo account; an outside ccxt client opens the position; the simulator's
control endpoints deleverage it (POST /sim/v1/adl) or move the price into its partial-liquidation
tier. The journal must hold one close row per forced close with the right reason ("adl",
"liquidation"), sizes before/closed/after in coins and contracts, the liquidation penalty, and
rows whose net_pnl add up exactly to positions-history realizedPnl, with the streams live and
with the engine down while it happens (then everything comes from REST: fills-history's subType
tells an ADL or liquidation fill apart, positions-history supplies the penalty).

Hand-computed numbers: zero slippage and spread, taker 0.05 %, BTC ctVal 0.01, maintenance 0.4 %,
penalty 0.2 %, ADL and liquidation fills pay no fee.

The ADL tests run on both faces of the simulator (OKX v5, and Bybit v5 through the native bybit
venue: AdlTrade executions, the life checked against the closed-PnL records of its ADL orders
plus its Funding executions; /sim/v1/adl takes coins there).
"""
from __future__ import annotations

from decimal import Decimal as D
from typing import Any

import pytest

from core.model import CloseResult
from tests.helpers.engine_helpers import (
    BTC,
    BTC_ID,
    VENUES,
    Rig,
    assert_rows_consistent,
    control,
    net_sum,
    set_price,
    sim_state,
)

pytestmark = pytest.mark.timeout(90)
BOTH = pytest.mark.parametrize("venue", VENUES)


async def adl(rig: Rig, **body: str) -> dict[str, Any]:
    if "sz" in body:  # said in OKX contracts; the Bybit face takes coins
        body["sz"] = str(rig.ct(body["sz"]))
    (got,) = await control(rig.srv, "/sim/v1/adl", {"instId": BTC_ID, **body})
    return got


def sizes(row: dict[str, Any]) -> tuple[Any, ...]:
    return (row["reason"], row["size_before"], row["size_closed"], row["size_after"], row["contracts_closed"])


def money(row: dict[str, Any]) -> tuple[Any, ...]:
    return (row["gross_pnl"], row["fee"], row["liq_penalty"], row["funding"], row["net_pnl"])


async def cash(rig: Rig) -> D:
    balance = (await sim_state(rig.srv))["balance"]
    if rig.bybit:
        return D(balance["coin"][0]["walletBalance"])
    return D(balance["details"][0]["cashBal"])


async def check_life(rig: Rig, rows: list[dict[str, Any]], close_type: str) -> dict[str, str]:
    """The rows against the exchange: one life, net sum == realizedPnl == the cash it moved."""
    assert_rows_consistent(rows)
    assert len({r["position_id"] for r in rows}) == 1
    if rig.bybit:  # no per-life record: the closed-PnL records of its closing orders + funding
        records = await rig.closed_pnl()
        funding = sum((-D(e["execFee"]) for e in await rig.executions("Funding")), D(0))
        assert net_sum(rows) == sum((D(c["closedPnl"]) for c in records), D(0)) + funding
        assert net_sum(rows) == await cash(rig) - 10000
        assert sum((r["fee"] for r in rows), D(0)) == sum(
            (D(c["openFee"]) + D(c["closeFee"]) for c in records), D(0))
        closing = {e["execType"] for e in await rig.executions() if e["execType"] not in ("Trade", "Funding")}
        assert closing == ({"AdlTrade"} if close_type == "6" else {"BustTrade"})  # the forced fills
        assert rig.engine is not None and rig.engine.positions() == []
        report = await rig.engine.reconcile()
        assert report.ok, "\n".join(report.lines())
        return {"realizedPnl": str(net_sum(rows))}
    (hist,) = await rig.positions_history()
    assert hist["type"] == close_type
    assert net_sum(rows) == D(hist["realizedPnl"]) == await cash(rig) - 10000
    assert sum((r["liq_penalty"] for r in rows), D(0)) == -D(hist["liqPenalty"])
    assert sum((r["fee"] for r in rows), D(0)) == -D(hist["fee"])
    assert rig.engine is not None and rig.engine.positions() == []
    report = await rig.engine.reconcile()
    assert report.ok, "\n".join(report.lines())
    return hist


@BOTH
async def test_adl_partial_then_full(rig: Rig) -> None:
    await rig.start_engine()
    await rig.outside("buy", 100)  # 1 BTC at 60000, fee 30
    await rig.wait_fills(1)
    await set_price(rig.srv, "62000")
    await adl(rig, sz="40", px="62500")  # 0.4 BTC at 62500: gross 1000, no fee
    (first,) = await rig.wait_trades(1)
    assert sizes(first) == ("adl", D("1"), D("0.4"), D("0.6"), rig.ct(40))
    # the opening fee rides on the first close row; no penalty, no funding yet
    assert money(first) == (D("1000"), D("30"), D("0"), D("0"), D("970"))
    assert (first["entry_price"], first["exit_price"]) == (D("60000"), D("62500"))
    if not rig.bybit:
        (hist,) = await rig.positions_history()
        assert hist["type"] == "5" and D(hist["realizedPnl"]) == first["net_pnl"]

    # funding 0.01 % at 62000 on the 0.6 BTC left: the long pays 3.72, carried by the next row
    await control(rig.srv, "/sim/v1/funding", {"instId": BTC_ID, "rate": "0.0001"})
    await rig.wait_funding(1)
    await adl(rig)  # the rest at the mark: 0.6 x 2000 = 1200
    rows = await rig.wait_trades(2)
    await rig.flush()
    rows = rig.trades()
    assert len(rows) == 2
    second = rows[1]
    assert sizes(second) == ("adl", D("0.6"), D("0.6"), D("0"), rig.ct(60))
    assert money(second) == (D("1200"), D("0"), D("0"), D("-3.72"), D("1196.28"))
    hist = await check_life(rig, rows, "6")
    assert D(hist["realizedPnl"]) == D("2166.28")

    fills = rig.fills()
    assert [(f["origin"], f["category"], f["fee"]) for f in fills] == [
        ("external", "normal", D("30")), ("adl", "adl", D("0")), ("adl", "adl", D("0"))]
    assert [c.reason.value for c in rig.events if isinstance(c, CloseResult)] == ["adl", "adl"]


@BOTH
async def test_adl_while_the_engine_is_down(rig: Rig) -> None:
    """The second ADL happens with the engine stopped: backfilled from fills-history as adl."""
    await rig.start_engine()
    await rig.outside("sell", 50)  # 0.5 BTC short at 60000, fee 15
    await rig.wait_fills(1)
    await adl(rig, sz="20", px="59000")  # 0.2 BTC bought back: gross 0.2 x 1000 = 200
    (first,) = await rig.wait_trades(1)
    assert sizes(first) == ("adl", D("0.5"), D("0.2"), D("0.3"), rig.ct(20))
    assert money(first) == (D("200"), D("15"), D("0"), D("0"), D("185"))
    await rig.stop_engine()

    await set_price(rig.srv, "61000")
    await adl(rig, px="58000")  # 0.3 BTC at 58000 while nobody watches: gross 600
    await rig.start_engine()
    rows = await rig.wait_trades(2)
    await rig.flush()
    rows = rig.trades()
    assert len(rows) == 2
    assert sizes(rows[1]) == ("adl", D("0.3"), D("0.3"), D("0"), rig.ct(30))
    assert money(rows[1]) == (D("600"), D("0"), D("0"), D("0"), D("600"))
    hist = await check_life(rig, rows, "6")
    assert D(hist["realizedPnl"]) == D("785")
    assert [f["origin"] for f in rig.fills()] == ["external", "adl", "adl"]


async def _open_15_btc_at_100x(rig: Rig) -> None:
    await rig.ext.set_leverage(100, BTC, {"mgnMode": "cross"})
    await rig.ext.create_order(BTC, "market", "buy", 1500)  # 15 BTC at 60000, fee 450


async def test_partial_liquidation_then_full(rig: Rig) -> None:
    await rig.start_engine()
    await _open_15_btc_at_100x(rig)
    await rig.wait_fills(1)
    # 59550: equity 9550 - 6750 = 2800 <= mmr 3573; half (7.5 BTC, penalty 893.25) restores it
    await set_price(rig.srv, "59550")
    (first,) = await rig.wait_trades(1)
    assert sizes(first) == ("liquidation", D("15"), D("7.5"), D("7.5"), D("750"))
    assert money(first) == (D("-3375"), D("450"), D("893.25"), D("0"), D("-4718.25"))
    (hist,) = await rig.positions_history()
    assert hist["type"] == "4" and D(hist["realizedPnl"]) == first["net_pnl"]
    (pos,) = rig.engine.positions() if rig.engine else ()
    assert pos.contracts == D("750")

    # 59450: equity 1156.75 <= mmr 1783.5 and half would not do: the rest goes, penalty 891.75
    await set_price(rig.srv, "59450")
    rows = await rig.wait_trades(2)
    await rig.flush()
    rows = rig.trades()
    assert len(rows) == 2
    assert sizes(rows[1]) == ("liquidation", D("7.5"), D("7.5"), D("0"), D("750"))
    assert money(rows[1]) == (D("-4125"), D("0"), D("891.75"), D("0"), D("-5016.75"))
    hist = await check_life(rig, rows, "3")
    assert D(hist["realizedPnl"]) == D("-9735")
    fills = rig.fills()
    assert [(f["origin"], f["category"], f["liq_penalty"]) for f in fills] == [
        ("external", "normal", D("0")), ("liquidation", "partial_liquidation", D("893.25")),
        ("liquidation", "full_liquidation", D("891.75"))]


async def test_partial_liquidation_while_the_engine_is_down(rig: Rig) -> None:
    """No push carried the penalty: the row takes it from positions-history (source exchange)."""
    await rig.start_engine()
    await _open_15_btc_at_100x(rig)
    await rig.wait_fills(1)
    await rig.stop_engine()
    await set_price(rig.srv, "59550")
    await rig.start_engine()
    (first,) = await rig.wait_trades(1)
    assert sizes(first) == ("liquidation", D("15"), D("7.5"), D("7.5"), D("750"))
    assert money(first) == (D("-3375"), D("450"), D("893.25"), D("0"), D("-4718.25"))
    assert first["source"] == "exchange"

    # the owner closes the rest at 59600: gross 7.5 x -400 = -3000, fee 7.5 x 59600 x 0.05 % = 223.5
    await set_price(rig.srv, "59600")
    await rig.ext.create_order(BTC, "market", "sell", 750, None, {"reduceOnly": True})
    rows = await rig.wait_trades(2)
    await rig.flush()
    rows = rig.trades()
    assert len(rows) == 2
    assert sizes(rows[1]) == ("external", D("7.5"), D("7.5"), D("0"), D("750"))
    assert money(rows[1]) == (D("-3000"), D("223.5"), D("0"), D("0"), D("-3223.5"))
    hist = await check_life(rig, rows, "2")
    assert D(hist["realizedPnl"]) == D("-7941.75")
