"""risk_check_us: what the pre-trade risk guard adds to every order, in microseconds (median).

The real Engine (its ledger, book and check chain) holds three open positions with marks, every
``[risk]`` limit is set, and the guard is asked about an entry order that passes all of them (the
slowest path: every limit evaluated, the rate window updated). No exchange is involved: the
venue is a stand-in that only carries the instruments, since the check never calls it.
Also reported: the whole chain (read-only, origin and journal gates + the guard).
"""
from __future__ import annotations

import statistics
import tempfile
import time
from datetime import UTC, datetime
from decimal import Decimal as D
from pathlib import Path
from typing import Any

from core.engine import Engine
from core.events import PlaceOrder
from core.journal import Journal
from core.model import Fill, Instrument, OrderSide, Origin
from core.settings.config import RiskSettings

INSTRUMENTS = {
    "BTC/USDT:USDT": Instrument("BTC/USDT:USDT", "BTC-USDT-SWAP", D("0.01"), D("0.01"), D("0.01"), D("0.1")),
    "ETH/USDT:USDT": Instrument("ETH/USDT:USDT", "ETH-USDT-SWAP", D("0.1"), D("0.01"), D("0.01"), D("0.01")),
    "SOL/USDT:USDT": Instrument("SOL/USDT:USDT", "SOL-USDT-SWAP", D("1"), D("0.01"), D("0.01"), D("0.001")),
}
PRICES = {"BTC/USDT:USDT": D("60000"), "ETH/USDT:USDT": D("3000"), "SOL/USDT:USDT": D("150")}


class _Venue:
    """Only what the guard reads: the instruments."""

    instruments = INSTRUMENTS
    symbols = tuple(INSTRUMENTS)


def _engine(directory: Path) -> Engine:
    settings = RiskSettings(max_order_notional=D("100000"), max_position_notional=D("200000"),
                            max_total_notional=D("500000"), max_open_positions=10,
                            max_orders_per_minute=10**9, daily_loss_limit=D("1000"),
                            max_drawdown=D("1000"))
    engine = Engine(_Venue(), Journal(directory), risk=settings)  # type: ignore[arg-type]
    ts = datetime(2026, 1, 1, tzinfo=UTC)
    for n, (symbol, inst) in enumerate(INSTRUMENTS.items()):
        engine.ledger.apply_fill(Fill(f"f{n}", f"o{n}", "", symbol, OrderSide.BUY, D("5"), inst.contract_size,
                                      PRICES[symbol], D("0.1"), "USDT", ts))
        engine.book.marks[symbol] = PRICES[symbol] * D("1.001")
    return engine


def _time_us(call: Any, n: int) -> float:
    t0 = time.perf_counter()
    for _ in range(n):
        call()
    return (time.perf_counter() - t0) / n * 1e6  # float ok: a timing


def bench_risk(repeats: int = 7, n: int = 20_000) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="perpdesk-bench-risk-") as tmp:
        engine = _engine(Path(tmp) / "journal")
        guard = engine.control.guard
        chain = engine.orders.checks
        order = PlaceOrder("BTC/USDT:USDT", OrderSide.BUY, D("1"))
        assert guard(order, Origin.STRATEGY) is None, "the bench order must pass every limit"
        guard_us = statistics.median(_time_us(lambda: guard(order, Origin.STRATEGY), n) for _ in range(repeats))
        chain_us = statistics.median(_time_us(lambda: chain.refusal(order, Origin.STRATEGY), n)
                                     for _ in range(repeats))
        eval_us = statistics.median(_time_us(engine.control.open_net, n // 10) for _ in range(repeats))
    return {"risk_check_us": round(guard_us, 2), "_risk_chain_us": round(chain_us, 2),
            "_risk_open_net_us": round(eval_us, 2),
            "_detail": f"guard {guard_us:.2f} us, whole chain {chain_us:.2f} us, "
                       f"loss-monitor valuation {eval_us:.2f} us (3 positions, every limit set)"}
