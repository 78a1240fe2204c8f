"""Ledger properties over random fill/funding sequences: money is conserved to the last decimal.

Whatever the sequence (partial closes, flips, rebates, liquidation penalties, funding between fills),
the close rows' net PnL plus what is still open (unrealized at the last price, minus fees not yet
handed to a row, plus funding not yet handed to a row) equals the cash that actually moved.
"""
from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Context, Inexact, localcontext
from decimal import Decimal as D

from hypothesis import given, settings
from hypothesis import strategies as st

from core.accounting.ledger import Ledger, LedgerPosition
from core.model import CloseResult, Fill, OrderSide, Origin, PositionSide

T0 = datetime(2024, 5, 1, tzinfo=UTC)
SYMBOLS = {"BTC/USDT:USDT": D("0.01"), "XRP/USDT:USDT": D("0.0153")}  # symbol -> ctVal


def _exact() -> Context:
    ctx = Context(prec=120)
    ctx.traps[Inexact] = True  # the test's own sums must not round either
    return ctx


_fill_op = st.tuples(
    st.just("fill"),
    st.sampled_from(sorted(SYMBOLS)),
    st.sampled_from(["buy", "sell"]),
    st.integers(1, 400),  # lots
    st.integers(1, 900_000),  # price ticks
    st.integers(-300, 3000),  # fee in 0.0001 (negative = rebate)
    st.integers(0, 50),  # liquidation penalty in 0.01, applied only to reducing fills
    st.sampled_from(["net", "long", "short"]),
)
_funding_op = st.tuples(st.just("funding"), st.sampled_from(sorted(SYMBOLS)),
                        st.integers(-5000, 5000), st.sampled_from(["net", "long", "short"]))
_grid = st.tuples(st.sampled_from([D("1"), D("0.1"), D("0.01")]),  # lot (contracts)
                  st.sampled_from([D("0.1"), D("0.01"), D("0.0001"), D("0.3")]))  # tick


def _check_position(after: LedgerPosition | None, now: D, leg_sign: int | None) -> None:
    """The ledger's position is what the fills say it is (``now``: signed contracts held)."""
    if now == 0:
        assert after is None
        return
    assert after is not None and after.contracts == abs(now) > 0
    assert after.coins == after.contracts * after.contract_size
    expected_side = PositionSide.LONG if (leg_sign or now) > 0 else PositionSide.SHORT
    assert after.side is expected_side


def _check_close(c: CloseResult, before: LedgerPosition, chain: dict[str, tuple[D, D]]) -> None:
    """A close's sizes add up, and one close's size_after is the next one's size_before."""
    assert c.size_before == before.coins and c.entry_price == before.entry_price
    assert c.size_closed == c.contracts_closed * c.contract_size > 0
    assert c.size_after == c.size_before - c.size_closed >= 0
    if c.position_id in chain:
        after_last, added = chain[c.position_id]
        assert c.size_before == after_last + added
    chain[c.position_id] = (c.size_after, D(0))


def _run(ops: list[tuple], lot: D, tick: D, hedge: bool) -> None:
    led = Ledger()
    closes: list[CloseResult] = []
    cash = D(0)
    last: dict[str, D] = {}
    held: dict[tuple[str, str], D] = defaultdict(D)  # signed contracts per (symbol, pos_side)
    chain: dict[str, tuple[D, D]] = {}  # life -> (size_after of its last close, coins added since)
    with localcontext(_exact()):
        for i, op in enumerate(ops):
            ts = T0 + timedelta(seconds=i)
            if op[0] == "funding":
                _, symbol, cents, leg = op
                pos_side = leg if hedge else "net"
                amount = D(cents) / 100
                open_pos = led.position(symbol, pos_side)
                pid = led.apply_funding(symbol, pos_side, amount)
                if open_pos is None:
                    assert pid is None
                else:
                    assert pid == open_pos.position_id
                    cash += amount
                continue
            _, symbol, side, lots, ticks, fee_units, pen_cents, leg = op
            pos_side = leg if hedge else "net"
            ct = SYMBOLS[symbol]
            sign = 1 if side == "buy" else -1
            contracts = lots * lot
            have = held[(symbol, pos_side)]
            leg_sign = {"long": 1, "short": -1}.get(pos_side)
            reducing = have != 0 and (sign != (leg_sign or (1 if have > 0 else -1)))
            if hedge and reducing:
                contracts = min(contracts, abs(have))  # the exchange never over-closes a leg
            if hedge and not reducing and sign != leg_sign:
                continue  # a reducing order on a flat leg cannot fill
            price, fee = ticks * tick, fee_units * D("0.0001")
            penalty = pen_cents * D("0.01") if reducing else D(0)
            f = Fill(fill_id=f"f{i}", order_id=f"o{i}", client_order_id="", symbol=symbol,
                     side=OrderSide(side), contracts=contracts, contract_size=ct, price=price,
                     fee=fee, fee_ccy="USDT", ts=ts, pos_side=pos_side, liq_penalty=penalty,
                     origin=Origin.LIQUIDATION if penalty else Origin.STRATEGY)
            before = led.position(symbol, pos_side)
            got = led.apply_fill(f)
            closes += got
            cash += -sign * contracts * ct * price - fee - penalty
            last[symbol] = price
            held[(symbol, pos_side)] += sign * contracts if not hedge else (
                contracts if not reducing else -contracts)
            _check_position(led.position(symbol, pos_side), held[(symbol, pos_side)], leg_sign)
            assert len(got) == (1 if reducing else 0)
            if not got and before is not None and before.position_id in chain:
                after_last, added = chain[before.position_id]
                chain[before.position_id] = (after_last, added + contracts * ct)
            if got:
                [c] = got
                assert before is not None and c.position_id == before.position_id
                assert c.liq_penalty == penalty and c.exit_price == price
                _check_close(c, before, chain)

        open_value = D(0)
        for pos in led.positions():
            open_value += pos.unrealized(last[pos.symbol]) - pos.fee_pending + pos.funding_pending
            cash += pos.side.sign * pos.coins * last[pos.symbol]
        assert sum((c.net_pnl for c in closes), D(0)) + open_value == cash

    by_life: dict[str, list[CloseResult]] = defaultdict(list)
    for c in closes:
        by_life[c.position_id].append(c)
    open_ids = {p.position_id for p in led.positions()}
    for pid, rows in by_life.items():
        for a, b in zip(rows, rows[1:], strict=False):
            assert a.opened_at == b.opened_at and a.closed_at <= b.closed_at
        assert (rows[-1].size_after == 0) == (pid not in open_ids)


@settings(max_examples=200, deadline=None)
@given(ops=st.lists(st.one_of(_fill_op, _funding_op), min_size=1, max_size=30), grid=_grid)
def test_net_mode_conserves_money_exactly(ops: list[tuple], grid: tuple[D, D]) -> None:
    _run(ops, *grid, hedge=False)


@settings(max_examples=150, deadline=None)
@given(ops=st.lists(st.one_of(_fill_op, _funding_op), min_size=1, max_size=30), grid=_grid)
def test_hedge_mode_conserves_money_exactly(ops: list[tuple], grid: tuple[D, D]) -> None:
    _run(ops, *grid, hedge=True)
