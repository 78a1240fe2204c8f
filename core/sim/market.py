"""Instrument specs and the seeded price process of the simulator.

Prices are Decimal on the tick grid. The random walk draws its shocks in float (a shock is not
money) and turns the multiplier into a Decimal before it touches a price, so every price the
exchange sees is an exact multiple of the tick size. A given seed replays the same path for the
same sequence of steps, which keeps demos and tests reproducible.
"""
from __future__ import annotations

import math
import random
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal

from core.money import quantize_half_even


@dataclass(frozen=True, slots=True)
class InstrumentSpec:
    """A linear USDT-margined perpetual as OKX describes it (public/instruments)."""

    inst_id: str
    base: str
    ct_val: Decimal
    lot_sz: Decimal
    min_sz: Decimal
    tick_sz: Decimal
    max_lever: int
    mmr_rate: Decimal  # maintenance margin rate (single tier)
    start_px: Decimal
    vol_annual: float  # annualised volatility of the random walk
    max_mkt_sz: Decimal = Decimal("100000")
    max_lmt_sz: Decimal = Decimal("100000")
    settle_ccy: str = "USDT"

    @property
    def uly(self) -> str:
        return f"{self.base}-{self.settle_ccy}"


INSTRUMENTS: dict[str, InstrumentSpec] = {
    s.inst_id: s
    for s in (
        InstrumentSpec("BTC-USDT-SWAP", "BTC", Decimal("0.01"), Decimal("0.01"), Decimal("0.01"),
                       Decimal("0.1"), 100, Decimal("0.004"), Decimal("60000"), 0.55),
        InstrumentSpec("ETH-USDT-SWAP", "ETH", Decimal("0.1"), Decimal("0.01"), Decimal("0.01"),
                       Decimal("0.01"), 100, Decimal("0.005"), Decimal("3000"), 0.7),
        InstrumentSpec("SOL-USDT-SWAP", "SOL", Decimal("1"), Decimal("0.01"), Decimal("0.01"),
                       Decimal("0.001"), 50, Decimal("0.01"), Decimal("150"), 0.9),
    )
}

SECONDS_PER_YEAR = 365 * 24 * 3600


class PriceProcess:
    """Geometric random walk with rare jumps, one independent stream per instrument.

    ``step(dt_sim)`` advances simulated time by ``dt_sim`` seconds (the server multiplies real
    time by its speed factor). Jumps arrive as a Poisson process (``jump_rate`` per simulated
    hour) with a size of a few percent, so TP/SL and liquidation paths get exercised in demos.
    """

    def __init__(self, specs: dict[str, InstrumentSpec], seed: int = 1,
                 jump_rate_per_hour: float = 0.5, jump_size: float = 0.02) -> None:
        self.specs = specs
        self.rng = {inst: random.Random(f"{seed}:{inst}") for inst in specs}
        self.prices: dict[str, Decimal] = {inst: s.start_px for inst, s in specs.items()}
        self.funding_rates: dict[str, Decimal] = {}
        for inst in specs:
            r = self.rng[inst].uniform(-0.0001, 0.0003)
            self.funding_rates[inst] = Decimal(f"{r:.6f}")
        self.jump_rate_per_hour = jump_rate_per_hour
        self.jump_size = jump_size

    def step(self, dt_sim: float) -> dict[str, Decimal]:
        """Advance every instrument; returns the instruments whose price changed."""
        changed: dict[str, Decimal] = {}
        if dt_sim <= 0:
            return changed
        for inst, spec in self.specs.items():
            rng = self.rng[inst]
            sigma = spec.vol_annual * math.sqrt(dt_sim / SECONDS_PER_YEAR)
            ret = rng.gauss(0.0, sigma) - 0.5 * sigma * sigma
            if rng.random() < self.jump_rate_per_hour * dt_sim / 3600.0:
                ret += rng.choice((-1.0, 1.0)) * rng.uniform(0.5, 1.5) * self.jump_size
            mult = Decimal(f"{math.exp(ret):.12f}")
            old = self.prices[inst]
            new = quantize_half_even(old * mult, spec.tick_sz)
            if new <= 0:
                new = spec.tick_sz
            if new != old:
                self.prices[inst] = new
                changed[inst] = new
            # The predicted funding rate drifts slowly and stays in a plausible band.
            if rng.random() < min(1.0, dt_sim / 600.0):
                r = float(self.funding_rates[inst]) + rng.gauss(0.0, 0.00002)  # float ok: random drift, requantized to a 6-decimal Decimal below
                r = max(-0.00075, min(0.00075, r))
                self.funding_rates[inst] = Decimal(f"{r:.6f}")
        return changed

    def set_price(self, inst_id: str, px: Decimal) -> Decimal:
        """Force a price (control endpoint); snapped to the tick grid."""
        spec = self.specs[inst_id]
        new = quantize_half_even(px, spec.tick_sz)
        if new <= 0:
            raise ValueError("price must be positive")
        self.prices[inst_id] = new.quantize(spec.tick_sz, rounding=ROUND_HALF_EVEN)
        return self.prices[inst_id]
