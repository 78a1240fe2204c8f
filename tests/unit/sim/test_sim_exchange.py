"""The exchange core without any I/O: isolated liquidation, net flips, funding, trigger orders,
reduce-only, and the bookkeeping invariant (cash == start + sum of bills, per life
realizedPnl == sum of that life's bills) over a seeded random session."""
from __future__ import annotations

import random
from decimal import Decimal as D

import pytest

from core.sim.exchange import Exchange, SimError
from core.sim.market import INSTRUMENTS, PriceProcess

BTC, ETH, SOL = "BTC-USDT-SWAP", "ETH-USDT-SWAP", "SOL-USDT-SWAP"


class Clock:
    def __init__(self) -> None:
        self.t = 1_700_000_000_000

    def __call__(self) -> int:
        self.t += 1
        return self.t


@pytest.fixture
def ex():
    market = PriceProcess(INSTRUMENTS, seed=3)
    e = Exchange(INSTRUMENTS, market.prices, market.funding_rates, clock=Clock(), slippage=D(0), spread_ticks=0)
    e.market = market  # type: ignore[attr-defined]
    e.acct = e.add_account("k", "s", "p", D(10000))  # type: ignore[attr-defined]
    return e


def mkt(ex: Exchange, inst: str, side: str, sz: str, **kw: object):
    return ex.place_order(ex.acct, {"instId": inst, "side": side, "ordType": "market", "tdMode": "cross", "sz": sz,
                                    **kw})


def move(ex: Exchange, inst: str, px: str) -> None:
    ex.market.set_price(inst, D(px))
    ex.on_price(inst)


def test_isolated_liquidation_touches_only_its_margin(ex):
    ex.set_leverage(ex.acct, SOL, "isolated", 20)
    o = mkt(ex, SOL, "sell", "100", tdMode="isolated")  # 100 SOL short at 150, margin 750
    p = ex.acct.positions[(SOL, "isolated", "net")]
    assert p.pos == -100 and p.margin == D(750) and o.fee == D("-7.5")
    pm = ex.position_metrics(ex.acct, p)
    # short liq: (margin + avg*q) / (q*(1+m)) = (750 + 15000) / (100*1.01)
    assert pm.liq_px == (D(15750) / D(101)).quantize(D("0.001"))
    move(ex, SOL, "155.9")
    assert p.pos == -100
    move(ex, SOL, "156")
    assert p.pos == 0
    [h] = ex.acct.pos_history
    pnl = (D(150) - D(156)) * 100
    penalty = D(156) * 100 * D("0.005")  # half the 1% maintenance rate
    assert h.type == "3" and h.pnl == pnl and h.liq_penalty == -penalty and h.trigger_px == D(156)
    assert h.realized_pnl == pnl - D("7.5") - penalty
    assert ex.acct.cash == D(10000) + h.realized_pnl == D(10000) + sum(b.bal_chg for b in ex.acct.bills)
    liq = [o for o in ex.acct.orders.values() if o.category == "full_liquidation"]
    assert len(liq) == 1 and liq[0].liq_penalty == -penalty and liq[0].fee == 0


def test_net_flip_closes_one_life_and_opens_another(ex):
    mkt(ex, ETH, "buy", "10")  # 1 ETH long at 3000
    move(ex, ETH, "3100")
    o = mkt(ex, ETH, "sell", "30")  # closes 10, opens 20 short
    p = ex.acct.positions[(ETH, "cross", "net")]
    assert p.pos == -20 and p.avg_px == D(3100) and o.pnl == D(100)
    [h] = ex.acct.pos_history
    assert h.type == "2" and h.direction == "long" and h.pnl == 100
    assert h.fee == -(D(1) * 3000 * D("0.0005") + D(1) * 3100 * D("0.0005"))
    assert p.fee == -(D(2) * 3100 * D("0.0005")) and p.c_time > h.c_time
    pos_id = p.pos_id
    ex.close_position(ex.acct, ETH, "cross")
    assert [x.direction for x in ex.acct.pos_history] == ["long", "short"]
    assert {x.pos_id for x in ex.acct.pos_history} == {pos_id}  # one stable posId per slot


def test_funding_sign_and_isolated_margin(ex):
    mkt(ex, BTC, "sell", "5")
    ex.set_leverage(ex.acct, ETH, "isolated", 5)
    ex.place_order(ex.acct, dict(instId=ETH, side="buy", ordType="market", tdMode="isolated", sz="10"))
    btc_bills = ex.settle_funding(BTC, D("0.0003"))
    eth_bills = ex.settle_funding(ETH, D("0.0003"))
    assert [b.bal_chg for b in btc_bills] == [D("0.05") * 60000 * D("0.0003")]  # short receives
    # isolated: booked to the position (balChg 0, posBalChg and pnl = the amount), as OKX does
    paid = -(D(1) * 3000 * D("0.0003"))  # long pays
    assert [(b.bal_chg, b.pos_bal_chg, b.pnl) for b in eth_bills] == [(0, paid, paid)]
    assert btc_bills[0].pnl == btc_bills[0].bal_chg and btc_bills[0].pos_bal_chg == 0  # cross: unchanged
    assert btc_bills[0].sub_type == "174" and eth_bills[0].sub_type == "173"
    iso = ex.acct.positions[(ETH, "isolated", "net")]
    assert iso.margin == D(600) - D("0.9") and iso.funding_fee == D("-0.9")
    neg = ex.settle_funding(BTC, D("-0.0001"))
    assert neg[0].bal_chg == -(D("0.05") * 60000 * D("0.0001"))


def test_isolated_funding_reaches_the_cash_with_the_close(ex):
    """Held in the position's margin (equity moves, cashBal doesn't), paid out by the closing bill."""
    ex.set_leverage(ex.acct, ETH, "isolated", 5)
    ex.place_order(ex.acct, dict(instId=ETH, side="buy", ordType="market", tdMode="isolated", sz="10"))
    eq_before, cash_before = ex.account_metrics(ex.acct).eq, ex.acct.cash
    ex.settle_funding(ETH, D("0.0003"))
    assert ex.acct.cash == cash_before and ex.account_metrics(ex.acct).eq == eq_before - D("0.9")
    ex.place_order(ex.acct, dict(instId=ETH, side="sell", ordType="market", tdMode="isolated", sz="10"))
    assert ex.acct.cash == D(10000) + sum(b.bal_chg for b in ex.acct.bills)
    (h,) = ex.acct.pos_history
    assert h.funding_fee == D("-0.9") and ex.acct.cash == D(10000) + h.realized_pnl


def test_trigger_order_and_reduce_only(ex):
    with pytest.raises(SimError) as e:
        mkt(ex, BTC, "sell", "1", reduceOnly=True)
    assert e.value.code == "51169"
    a = ex.place_algo(ex.acct, {"instId": BTC, "side": "buy", "ordType": "trigger", "sz": "2", "tdMode": "cross",
                                "triggerPx": "61000", "orderPx": "-1"})
    assert a.trigger_up
    move(ex, BTC, "60900")
    assert a.state == "live"
    move(ex, BTC, "61000")
    assert a.state == "effective" and ex.acct.positions[(BTC, "cross", "net")].pos == 2
    spawned = ex.acct.orders[a.ord_id]
    assert spawned.algo_id == a.algo_id and spawned.source == "6"
    # reduce-only larger than the position is capped at it
    o = mkt(ex, BTC, "sell", "5", reduceOnly=True)
    assert o.sz == 2 and o.state == "filled" and ex.acct.positions[(BTC, "cross", "net")].pos == 0
    # a TP that would fire at once is refused
    mkt(ex, BTC, "buy", "1")
    with pytest.raises(SimError):
        ex.place_algo(ex.acct, {"instId": BTC, "side": "sell", "ordType": "conditional", "sz": "1",
                                "tpTriggerPx": "60000", "tpOrdPx": "-1", "reduceOnly": True})


def test_flat_position_cancels_its_tp_sl(ex):
    mkt(ex, BTC, "buy", "1")
    a = ex.place_algo(ex.acct, {"instId": BTC, "side": "sell", "ordType": "conditional", "sz": "1",
                                "slTriggerPx": "59000", "slOrdPx": "-1", "reduceOnly": True})
    ex.close_position(ex.acct, BTC, "cross")
    assert a.state == "canceled"


def test_post_only_and_limit_reduce_only(ex):
    o = ex.place_order(ex.acct, dict(instId=BTC, side="buy", ordType="post_only", tdMode="cross", sz="1", px="60000"))
    assert o.state == "canceled"  # would have taken liquidity
    mkt(ex, BTC, "buy", "1")
    lim = ex.place_order(ex.acct, dict(instId=BTC, side="sell", ordType="limit", tdMode="cross", sz="1",
                                       px="60500", reduceOnly=True))
    assert lim.state == "live" and lim.frozen == 0
    mkt(ex, BTC, "sell", "1")  # position closed by someone else: the reduce-only limit has nothing left
    move(ex, BTC, "60600")
    assert lim.state == "canceled" and ex.acct.positions[(BTC, "cross", "net")].pos == 0


def test_random_session_books_balance_exactly(ex):
    rng = random.Random(11)
    insts = [BTC, ETH, SOL]
    for _step in range(400):
        inst = rng.choice(insts)
        r = rng.random()
        try:
            if r < 0.45:
                mkt(ex, inst, rng.choice(["buy", "sell"]), str(rng.randint(1, 40)))
            elif r < 0.55:
                ex.settle_funding(inst, D(rng.randint(-5, 5)) / 10000)
            elif r < 0.65:
                last = ex.last(inst)
                px = (last * D(rng.choice(["0.99", "1.01"]))).quantize(INSTRUMENTS[inst].tick_sz)
                ex.place_order(ex.acct, dict(instId=inst, side="buy" if px < last else "sell", ordType="limit",
                                             tdMode="cross", sz=str(rng.randint(1, 10)), px=str(px)))
            else:
                changed = ex.market.step(600)
                for i in changed:
                    ex.on_price(i)
        except SimError as e:
            assert e.code in ("51008", "51169")
    acct = ex.acct
    assert acct.cash == D(10000) + sum(b.bal_chg for b in acct.bills)
    # every closed life: realizedPnl equals the bills booked to it, and fills' fees match history fees
    for h in acct.pos_history:
        if h.close_total_pos == h.open_max_pos and h.type in ("2", "3"):
            assert h.realized_pnl == h.pnl + h.fee + h.funding_fee + h.liq_penalty
    assert sum(f.fee for f in acct.fills) == sum(b.fee for b in acct.bills if b.type in ("2", "5"))
    assert len({b.bill_id for b in acct.bills}) == len(acct.bills)
    assert len(ex.acct.pos_history) > 3


def test_price_process_is_seeded_and_on_tick():
    a, b, c = PriceProcess(INSTRUMENTS, seed=5), PriceProcess(INSTRUMENTS, seed=5), PriceProcess(INSTRUMENTS, seed=6)
    path_a = [dict(a.step(30.0)) for _ in range(200)]
    path_b = [dict(b.step(30.0)) for _ in range(200)]
    path_c = [dict(c.step(30.0)) for _ in range(200)]
    assert path_a == path_b and path_a != path_c
    for inst, spec in INSTRUMENTS.items():
        px = a.prices[inst]
        assert px != spec.start_px and px > 0 and (px / spec.tick_sz) == (px / spec.tick_sz).to_integral_value()
        assert abs(a.funding_rates[inst]) <= D("0.00075")
    assert a.step(0) == {}  # speed 0: nothing moves
