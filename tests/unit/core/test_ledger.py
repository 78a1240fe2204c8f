"""Ledger worked examples: every expected number below was computed by hand (shown in comments)."""
from __future__ import annotations

import itertools
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

import pytest

from core.accounting.ledger import Ledger
from core.events import PositionHistoryRecord
from core.ids import life_seq, ms_from_utc, split_position_id
from core.model import (
    CloseReason,
    Fill,
    MarginMode,
    OrderSide,
    Origin,
    PositionSide,
    PositionSnapshot,
    PosSide,
    RowSource,
)

BTC = "BTC/USDT:USDT"
ETH = "ETH/USDT:USDT"
T0 = datetime(2024, 5, 1, 10, 0, 0, 123000, tzinfo=UTC)  # 1714557600123 ms
_ids = itertools.count(1)


def fill(side: str, contracts: str, price: str, *, fee: str = "0", symbol: str = BTC,
         ct: str = "0.01", pos_side: str = "net", minutes: int = 0,
         origin: Origin = Origin.CONSOLE, liq_penalty: str = "0") -> Fill:
    n = next(_ids)
    return Fill(
        fill_id=f"t{n}", order_id=f"o{n}", client_order_id=f"pdc{n}", symbol=symbol,
        side=OrderSide(side), contracts=D(contracts), contract_size=D(ct), price=D(price),
        fee=D(fee), fee_ccy="USDT", ts=T0 + timedelta(minutes=minutes), origin=origin,
        pos_side=pos_side, liq_penalty=D(liq_penalty),
    )


def test_long_partial_then_full_close_with_funding_between() -> None:
    led = Ledger()
    # 100 contracts x 0.01 = 1 BTC @ 60000; taker 0.05%: fee 30
    assert led.apply_fill(fill("buy", "100", "60000", fee="30")) == []
    pos = led.position(BTC)
    assert pos is not None and pos.side is PositionSide.LONG
    assert (pos.contracts, pos.coins, pos.entry_price, pos.fee_pending) == (100, D("1"), 60000, 30)
    assert pos.position_id == f"{BTC}#net#1714557600123"
    assert led.apply_funding(BTC, "net", D("-3")) == pos.position_id

    # sell 40 @ 61000: gross (61000-60000) x 0.4 = 400; fee 0.4 x 61000 x 0.0005 = 12.2
    [c1] = led.apply_fill(fill("sell", "40", "61000", fee="12.2", minutes=5))
    assert (c1.size_before, c1.size_closed, c1.size_after) == (D("1"), D("0.4"), D("0.6"))
    assert c1.contracts_closed == 40 and c1.contract_size == D("0.01")
    assert (c1.entry_price, c1.exit_price, c1.gross_pnl) == (60000, 61000, 400)
    assert c1.fee == D("42.2")  # opening 30 + this close 12.2
    assert c1.funding == D("-3")
    assert c1.net_pnl == D("354.8")  # 400 - 42.2 - 3
    assert c1.reason is CloseReason.MANUAL and c1.source is RowSource.LEDGER
    assert c1.opened_at == T0 and c1.closed_at == T0 + timedelta(minutes=5)
    assert not c1.is_full

    pos = led.position(BTC)
    assert pos is not None and pos.coins == D("0.6") and pos.entry_price == 60000
    assert (pos.fee_pending, pos.funding_pending, pos.funding_total) == (0, 0, D("-3"))
    led.apply_funding(BTC, "net", D("1.5"))

    # sell 60 @ 59000 (stop-loss): gross (59000-60000) x 0.6 = -600; fee 0.6 x 59000 x 0.0005 = 17.7
    [c2] = led.apply_fill(fill("sell", "60", "59000", fee="17.7", minutes=9, origin=Origin.SL))
    assert (c2.size_before, c2.size_closed, c2.size_after) == (D("0.6"), D("0.6"), 0)
    assert (c2.gross_pnl, c2.fee, c2.funding) == (-600, D("17.7"), D("1.5"))
    assert c2.net_pnl == D("-616.2") and c2.is_full and c2.reason is CloseReason.SL
    assert c2.position_id == c1.position_id
    # whole life: gross -200, fees 59.9, funding -1.5
    assert c1.net_pnl + c2.net_pnl == D("-261.4")
    assert led.position(BTC) is None and led.positions() == []


def test_average_entry_rounding_is_absorbed_by_the_last_close() -> None:
    led = Ledger()
    led.apply_fill(fill("buy", "100", "60000"))  # 1 BTC @ 60000
    led.apply_fill(fill("buy", "200", "61000", minutes=1))  # 2 BTC @ 61000
    pos = led.position(BTC)
    assert pos is not None and pos.coins == 3
    assert pos.entry_price == D("60666.666666666666666667")  # 182000 / 3, 18 decimals
    assert pos.unrealized(D("62000")) == 4000  # 186000 - 182000, exact despite the rounded entry
    [c1] = led.apply_fill(fill("sell", "100", "62000", minutes=2))
    assert c1.gross_pnl == D("1333.333333333333333333")  # (62000 - entry) x 1
    [c2] = led.apply_fill(fill("sell", "200", "62000", minutes=3))
    assert c2.entry_price == D("60666.666666666666666667")
    assert c2.gross_pnl == D("2666.666666666666666667")
    assert c1.gross_pnl + c2.gross_pnl == 4000  # what the cash actually did


def test_short_with_maker_rebate_and_partial_cover() -> None:
    led = Ledger()
    # ETH ctVal 0.1: sell 50 = 5 ETH @ 3000, maker rebate 0.3 (fee -0.3)
    led.apply_fill(fill("sell", "50", "3000", fee="-0.3", symbol=ETH, ct="0.1"))
    pos = led.position(ETH)
    assert pos is not None and pos.side is PositionSide.SHORT and pos.coins == 5
    assert pos.unrealized(D("2950")) == 250  # (2950-3000) x 5 x -1
    # buy 20 = 2 ETH @ 2900: gross (2900-3000) x 2 x -1 = 200; taker fee 2 x 2900 x 0.0005 = 2.9
    [c] = led.apply_fill(fill("buy", "20", "2900", fee="2.9", symbol=ETH, ct="0.1", minutes=1))
    assert c.side is PositionSide.SHORT and c.gross_pnl == 200
    assert c.fee == D("2.6")  # -0.3 + 2.9
    assert c.net_pnl == D("197.4")
    assert (c.size_before, c.size_closed, c.size_after) == (5, 2, 3)
    # short adds at 3100: entry (3000 x 3 + 3100 x 1) / 4 = 3025
    led.apply_fill(fill("sell", "10", "3100", symbol=ETH, ct="0.1", minutes=2))
    pos = led.position(ETH)
    assert pos is not None and pos.coins == 4 and pos.entry_price == 3025


def test_net_flip_closes_old_life_and_opens_new_with_split_fee() -> None:
    led = Ledger()
    led.apply_fill(fill("buy", "100", "60000", fee="30"))  # long 1 BTC
    old_id = led.position(BTC).position_id  # type: ignore[union-attr]
    led.apply_funding(BTC, "net", D("-2"))
    # sell 250 @ 61000 (2.5 BTC), fee 76.25: 100/250 closes (30.5), 150/250 opens (45.75)
    [c] = led.apply_fill(fill("sell", "250", "61000", fee="76.25", minutes=8))
    assert c.position_id == old_id and c.side is PositionSide.LONG
    assert (c.size_before, c.size_closed, c.size_after, c.contracts_closed) == (1, 1, 0, 100)
    assert c.gross_pnl == 1000 and c.fee == D("60.5") and c.funding == D("-2")
    assert c.net_pnl == D("937.5")
    new = led.position(BTC)
    assert new is not None and new.side is PositionSide.SHORT
    assert (new.contracts, new.coins, new.entry_price) == (150, D("1.5"), 61000)
    assert new.fee_pending == D("45.75") and new.funding_total == 0
    assert new.opened_at == T0 + timedelta(minutes=8)
    assert new.position_id == f"{BTC}#net#{1714557600123 + 8 * 60_000}" != old_id


def test_flip_fee_split_that_does_not_divide_evenly_sums_exactly() -> None:
    led = Ledger()
    led.apply_fill(fill("buy", "1", "100", ct="1"))
    # sell 3 with fee 0.1: closing part 1/3 -> 0.033333333333333333, remainder to the new life
    [c] = led.apply_fill(fill("sell", "3", "100", fee="0.1", ct="1", minutes=1))
    new = led.position(BTC)
    assert c.fee == D("0.033333333333333333")
    assert new is not None and new.fee_pending == D("0.066666666666666667")
    assert c.fee + new.fee_pending == D("0.1")


def test_hedge_legs_are_independent_and_overclose_is_refused() -> None:
    led = Ledger()
    led.apply_fill(fill("buy", "10", "100", ct="1", pos_side="long"))
    led.apply_fill(fill("sell", "5", "101", ct="1", pos_side="short"))
    legs = {p.pos_side: p for p in led.positions()}
    assert legs["long"].side is PositionSide.LONG and legs["long"].contracts == 10
    assert legs["short"].side is PositionSide.SHORT and legs["short"].contracts == 5
    assert legs["long"].position_id == f"{BTC}#long#1714557600123"
    # sell on the long leg reduces it: (105 - 100) x 4 = 20
    [c] = led.apply_fill(fill("sell", "4", "105", ct="1", pos_side="long", minutes=1))
    assert c.side is PositionSide.LONG and c.gross_pnl == 20 and c.size_after == 6
    # buy on the short leg reduces it: (99 - 101) x 5 x -1 = 10
    [c] = led.apply_fill(fill("buy", "5", "99", ct="1", pos_side="short", minutes=2))
    assert c.side is PositionSide.SHORT and c.gross_pnl == 10 and c.is_full
    assert led.position(BTC, "short") is None and led.position(BTC, "long").contracts == 6  # type: ignore[union-attr]
    with pytest.raises(ValueError, match="long leg of 6 contracts"):
        led.apply_fill(fill("sell", "7", "100", ct="1", pos_side="long"))
    with pytest.raises(ValueError, match="short leg of 0 contracts"):
        led.apply_fill(fill("buy", "1", "100", ct="1", pos_side="short"))
    assert led.position(BTC, "long").contracts == 6  # type: ignore[union-attr]  # refused = untouched


def test_fractional_contracts_convert_to_coins_exactly() -> None:
    led = Ledger()
    # 1.53 contracts of ctVal 0.01 = 0.0153 coins (float would say 0.015300000000000001)
    led.apply_fill(fill("buy", "1.53", "60000"))
    pos = led.position(BTC)
    assert pos is not None and pos.coins == D("0.0153") and str(pos.coins) == "0.0153"
    [c] = led.apply_fill(fill("sell", "0.52", "60500", minutes=1))
    assert (c.size_before, c.size_closed, c.size_after) == (D("0.0153"), D("0.0052"), D("0.0101"))
    assert c.gross_pnl == D("2.6")  # 500 x 0.0052
    assert led.position(BTC).contracts == D("1.01")  # type: ignore[union-attr]


def test_liquidation_row_matches_okx_realized_pnl_identity() -> None:
    led = Ledger()
    led.apply_fill(fill("buy", "100", "60000", fee="30"))  # 1 BTC, fee 30
    led.apply_funding(BTC, "net", D("-5"))
    # liquidated at 55000: fee 27.5, penalty 55; gross (55000-60000) x 1 = -5000
    [c] = led.apply_fill(fill("sell", "100", "55000", fee="27.5", liq_penalty="55", minutes=30,
                              origin=Origin.LIQUIDATION))
    assert c.reason is CloseReason.LIQUIDATION and c.liq_penalty == 55
    assert (c.gross_pnl, c.fee, c.funding) == (-5000, D("57.5"), D("-5"))
    assert c.net_pnl == D("-5117.5")  # -5000 - 57.5 - 55 - 5
    okx = PositionHistoryRecord(  # what positions-history reports, in OKX signs
        symbol=BTC, position_key="p1", pos_side="net", direction="long", close_type=3,
        open_avg_price=D("60000"), close_avg_price=D("55000"), open_max_contracts=D("100"),
        closed_contracts=D("100"), pnl=D("-5000"), fee=D("-57.5"), funding_fee=D("-5"),
        liq_penalty=D("-55"), realized_pnl=D("-5117.5"), created_at=T0, updated_at=T0)
    assert okx.pnl + okx.fee + okx.funding_fee + okx.liq_penalty == okx.realized_pnl
    assert c.net_pnl == okx.realized_pnl and c.gross_pnl == okx.pnl and -c.fee == okx.fee


def test_funding_when_flat_is_not_attributed_and_snapshot_reports_life_funding() -> None:
    led = Ledger()
    assert led.apply_funding(BTC, "net", D("-1")) is None
    led.apply_fill(fill("sell", "200", "60000"))  # short 2 BTC
    assert led.position(BTC).funding_pending == 0  # type: ignore[union-attr]
    led.apply_funding(BTC, "net", D("4"))
    led.apply_fill(fill("buy", "50", "59000", minutes=1))  # closes 0.5, resets funding_pending
    led.apply_funding(BTC, "net", D("2.5"))
    ts = T0 + timedelta(minutes=2)
    snap = led.snapshot(BTC, "net", D("59500"), ts, D("10"), "cross", D("65000"))
    assert snap is not None and snap.side is PositionSide.SHORT and snap.coins == D("1.5")
    assert snap.unrealized_pnl == 750  # (59500 - 60000) x 1.5 x -1
    assert snap.funding_accrued == D("6.5")  # whole life: 4 + 2.5
    assert (snap.leverage, snap.margin_mode, snap.liq_price, snap.ts) == (10, "cross", 65000, ts)
    assert snap.position_id == f"{BTC}#net#1714557600123" and snap.opened_at == T0
    assert led.position(BTC).funding_pending == D("2.5")  # type: ignore[union-attr]
    assert led.snapshot(ETH, "net", D("1"), ts, D("1"), "cross", None) is None


def test_bad_fills_are_refused_without_touching_state() -> None:
    led = Ledger()
    led.apply_fill(fill("buy", "10", "100"))
    with pytest.raises(ValueError, match="contract size"):
        led.apply_fill(fill("buy", "10", "100", ct="0.1"))
    with pytest.raises(ValueError, match="pos_side"):
        led.apply_fill(fill("buy", "10", "100", pos_side="both"))
    with pytest.raises(ValueError, match="> 0"):
        led.apply_fill(fill("sell", "0", "100"))
    with pytest.raises(ValueError, match="penalty"):
        led.apply_fill(fill("buy", "1", "100", liq_penalty="1"))
    assert led.position(BTC).contracts == 10  # type: ignore[union-attr]


def test_adopted_position_closes_against_the_adopted_entry() -> None:
    led = Ledger()
    view = led.adopt(BTC, "net", PositionSide.LONG, D("30"), D("0.01"), D("58000"), T0)
    assert view.coins == D("0.3") and view.position_id == f"{BTC}#net#1714557600123"
    [c] = led.apply_fill(fill("sell", "30", "59000", fee="0.1"))
    assert c.gross_pnl == 300 and c.fee == D("0.1") and c.is_full  # (59000-58000) x 0.3


def test_average_entry_stays_in_plain_notation() -> None:
    led = Ledger()
    # a venue that hands over normalized prices: 12080000 / 200 would come out as 6.04E+4
    led.apply_fill(fill("buy", "100", "6E+4", ct="1"))
    led.apply_fill(fill("buy", "100", "6.08E+4", ct="1"))
    pos = led.position(BTC)
    assert pos is not None and pos.entry_price == 60400 and str(pos.entry_price) == "60400"
    with pytest.raises(ValueError):  # a short cannot sit on the long leg
        led.adopt(BTC, "long", PositionSide.SHORT, D("1"), D("1"), D("1"), T0)


def test_lives_opened_in_one_millisecond_get_distinct_ids_rebuilt_identically() -> None:
    """Open, close, open again (and a net flip) within one millisecond: every life its own id,
    the same ids when the same fills are applied again (journal replay, restart)."""
    same_ms = [
        fill("buy", "1", "60000"),  # life 1 opens at T0
        fill("sell", "1", "60010"),  # ... closes at T0
        fill("buy", "2", "60020"),  # life 2 opens at T0
        fill("sell", "3", "60030"),  # closes it and opens life 3 (short 1) at T0: a net flip
        fill("buy", "1", "60040", minutes=1),  # life 3 closes a minute later
        fill("buy", "1", "60050", minutes=1),  # life 4 opens then: a new millisecond, plain id
    ]

    def ids(fills: list[Fill]) -> list[str]:
        led = Ledger()
        out: list[str] = []
        for f in fills:
            out += [c.position_id for c in led.apply_fill(f)]
        pos = led.position(BTC)
        assert pos is not None
        return [*out, pos.position_id]

    got = ids(same_ms)
    ms = 1714557600123
    assert got == [f"{BTC}#net#{ms}", f"{BTC}#net#{ms}.2", f"{BTC}#net#{ms}.3",
                   f"{BTC}#net#{ms + 60_000}"]
    assert ids(same_ms) == got  # replay: same fills, same order, same ids
    assert [split_position_id(pid) for pid in got[:3]] == [
        (BTC, "net", ms, 1), (BTC, "net", ms, 2), (BTC, "net", ms, 3)]
    assert [life_seq(pid) for pid in got] == [1, 2, 3, 1]


def test_adopting_the_held_life_keeps_its_id_and_another_life_takes_a_new_one() -> None:
    led = Ledger()
    led.apply_fill(fill("buy", "1", "60000"))
    led.apply_fill(fill("sell", "1", "60000"))
    led.apply_fill(fill("buy", "1", "60000"))  # second life of T0
    held = led.position(BTC)
    assert held is not None and held.position_id.endswith(".2")
    again = led.adopt(BTC, "net", PositionSide.LONG, D("2"), D("0.01"), D("60000"), T0)
    assert again.position_id == held.position_id  # the same life, re-read from the exchange
    other = led.adopt(BTC, "net", PositionSide.SHORT, D("1"), D("0.01"), D("60000"),
                      T0 + timedelta(seconds=30))
    assert other.position_id == f"{BTC}#net#1714557630123"


@pytest.mark.parametrize("bad", [f"{BTC}#net#", f"{BTC}#net#12.1", f"{BTC}#net#12.x", "12",
                                 f"{BTC}#net#12.2.3"])
def test_position_ids_that_do_not_parse_are_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        split_position_id(bad)


def test_snapshot_pnl_is_exact_for_both_sides_and_a_flat_mark_reads_zero_not_minus_zero() -> None:
    # every mark push revalues with one fused multiply-add: the PnL must be the exact
    # (mark x coins - cost basis) x side, and a short at its entry must not read "-0"
    led = Ledger()
    led.apply_fill(fill("buy", "3", "60000.1"))
    led.apply_fill(fill("buy", "4", "60123.45", minutes=1))  # long 0.07 BTC, cost 4204.941
    led.apply_fill(fill("sell", "7", "3000.37", symbol=ETH, ct="0.1"))  # short 0.7 ETH
    ts = T0 + timedelta(minutes=2)
    for mark in ("59999.9", "60123.45", "61000.123456789", "0.1"):
        snap = led.snapshot(BTC, "net", D(mark), ts, D("10"), "cross", None)
        assert snap is not None and snap.unrealized_pnl == D(mark) * D("0.07") - D("4204.941")
    for mark in ("2999.99", "3100.5", "0.001"):
        snap = led.snapshot(ETH, "net", D(mark), ts, D("10"), "cross", None)
        assert snap is not None and snap.unrealized_pnl == (D("0.7") * D("3000.37") - D(mark) * D("0.7"))
    flat = led.snapshot(ETH, "net", D("3000.37"), ts, D("10"), "cross", None)
    assert flat is not None and flat.unrealized_pnl == 0 and not flat.unrealized_pnl.is_signed()


def test_snapshot_carries_every_field_of_its_life() -> None:
    # the snapshot is built positionally on the mark path: each field must land in its own place
    led = Ledger()
    led.apply_fill(fill("sell", "7", "3000.37", symbol=ETH, ct="0.1", fee="0.2"))
    led.apply_funding(ETH, "net", D("1.25"))
    ts = T0 + timedelta(minutes=3)
    snap = led.snapshot(ETH, "net", D("2990.5"), ts, D("20"), MarginMode.ISOLATED, D("3100.1"))
    assert snap == PositionSnapshot(
        symbol=ETH, position_id=f"{ETH}#net#{ms_from_utc(T0)}", pos_side=PosSide.NET,
        side=PositionSide.SHORT, contracts=D("7"), contract_size=D("0.1"), entry_price=D("3000.37"),
        mark_price=D("2990.5"), unrealized_pnl=D("6.909"), funding_accrued=D("1.25"),
        leverage=D("20"), margin_mode=MarginMode.ISOLATED, liq_price=D("3100.1"), opened_at=T0, ts=ts)


def test_a_life_view_values_like_its_snapshot_and_a_flat_short_reads_zero() -> None:
    # the risk monitor values each open life through its view: the same exact figure as the
    # snapshot the positions pane shows, with or without a cost basis, and never "-0"
    led = Ledger()
    led.apply_fill(fill("buy", "3", "60000.1"))
    led.apply_fill(fill("buy", "4", "60123.45", minutes=1))
    led.apply_fill(fill("sell", "7", "3000.37", symbol=ETH, ct="0.1"))
    ts = T0 + timedelta(minutes=2)
    for symbol, mark in ((BTC, "61000.123456789"), (BTC, "59999.9"), (ETH, "2999.99"), (ETH, "3000.37")):
        pos = led.position(symbol)
        snap = led.snapshot(symbol, "net", D(mark), ts, D("10"), "cross", None)
        assert pos is not None and snap is not None
        assert pos.unrealized(D(mark)) == snap.unrealized_pnl
        assert replace(pos, cost=None).unrealized(D(mark)) == (
            (D(mark) - pos.entry_price) * pos.coins * (1 if pos.side is PositionSide.LONG else -1))
    flat = led.position(ETH)
    assert flat is not None and not flat.unrealized(D("3000.37")).is_signed()
