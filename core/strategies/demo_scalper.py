"""A demo scalper for the simulator: small positions with exchange-side TP/SL.

Why it exists: a newcomer running the committed config should see every kind of event within
minutes: fills, closes by take-profit and stop-loss fired on the exchange side (the engine did not
send them), partial closes by the strategy, and funding. Sizes are modest (a few hundred USDT of
notional on a 10000 USDT demo account) and it never holds more than ``max_positions`` at once.

Parameters ([strategy.params], all optional): ``symbols`` (default: every configured symbol),
``interval_s`` (5), ``max_positions`` (2), ``notional`` (USDT per position, 300), ``tp_pct`` and
``sl_pct`` (distance of the TP/SL triggers from the mark, 0.0015 = 0.15%), ``partial_chance``
(probability per tick of halving an open position by hand, 0.15), ``seed`` (random seed).
It is a coin flip, not a strategy: the committed config runs ``ema_scalper``; this one stays for
demos that want every event kind quickly.
"""
from __future__ import annotations

import random
from collections.abc import Mapping
from decimal import ROUND_DOWN, ROUND_UP
from typing import Any

from core.events import ClosePosition, PlaceOrder
from core.model import OrderSide, PositionSide
from core.money import quantize_down
from core.strategies.base import Context, Strategy, StrategyError, check_params, number_param

PARAMS = ("symbols", "interval_s", "max_positions", "notional", "tp_pct", "sl_pct", "partial_chance", "seed")


class DemoScalper(Strategy):
    name = "demo_scalper"

    def __init__(self, params: Mapping[str, Any] | None = None) -> None:
        super().__init__(params)
        p = self.params
        check_params(p, PARAMS, self.name)
        symbols = p.get("symbols")
        if symbols is not None and (not isinstance(symbols, list) or not all(isinstance(s, str) for s in symbols)):
            raise StrategyError('[strategy.params] symbols must be an array of symbols like ["BTC/USDT:USDT"]')
        self.symbols: list[str] | None = symbols
        self.tick_s = float(number_param(p, "interval_s", "5")) or 5.0  # float ok: seconds between decisions
        self.max_positions = int(number_param(p, "max_positions", "2"))
        self.notional = number_param(p, "notional", "300")
        self.tp_pct = number_param(p, "tp_pct", "0.0015")
        self.sl_pct = number_param(p, "sl_pct", "0.0015")
        self.partial_chance = float(number_param(p, "partial_chance", "0.15"))  # float ok: a probability
        self.rng = random.Random(p.get("seed"))
        self.traded: list[str] = []

    async def on_start(self, ctx: Context) -> None:
        self.traded = [s for s in (self.symbols or list(ctx.symbols)) if s in ctx.instruments]
        if not self.traded:
            ctx.log("none of its symbols is traded here; not trading")
            return
        ctx.log(f"on {', '.join(self.traded)}: max {self.max_positions} positions, "
                f"{self.notional} USDT each, tp/sl {self.tp_pct}/{self.sl_pct}")

    async def on_tick(self, ctx: Context) -> None:
        """One decision: maybe halve a position, else maybe open one."""
        if not self.traded:
            return
        positions = ctx.positions()
        if positions and self.rng.random() < self.partial_chance:
            pos = self.rng.choice(positions)
            inst = ctx.instruments[pos.symbol]
            half = quantize_down(pos.contracts / 2, inst.lot_size)
            if half >= inst.min_size:
                result = await ctx.submit(ClosePosition(pos.symbol, pos.pos_side, half))
                ctx.log(f"partial close: {result.message}")
                return
        if len(positions) >= self.max_positions or not ctx.can_enter:
            return
        held = {p.symbol for p in positions}
        free = [s for s in self.traded if s not in held]
        if not free:
            return
        symbol = self.rng.choice(free)
        inst = ctx.instruments[symbol]
        mark = ctx.mark(symbol)
        if mark is None or mark <= 0:
            return
        contracts = max(inst.to_contracts(self.notional / mark), inst.min_size)
        side = self.rng.choice((OrderSide.BUY, OrderSide.SELL))
        sign = PositionSide.LONG.sign if side is OrderSide.BUY else PositionSide.SHORT.sign
        tick = inst.tick_size
        tp_raw = mark * (1 + sign * self.tp_pct)
        sl_raw = mark * (1 - sign * self.sl_pct)
        # away from the mark on the tick grid, so a trigger is never at the current price
        tp = (tp_raw / tick).to_integral_value(ROUND_UP if sign > 0 else ROUND_DOWN) * tick
        sl = (sl_raw / tick).to_integral_value(ROUND_DOWN if sign > 0 else ROUND_UP) * tick
        if sign > 0:
            tp, sl = max(tp, mark + tick), min(sl, mark - tick)
        else:
            tp, sl = min(tp, mark - tick), max(sl, mark + tick)
        result = await ctx.submit(PlaceOrder(symbol, side, contracts, take_profit=tp, stop_loss=sl))
        ctx.log(f"open: {result.message}")
