"""A demo scalper for the simulator: small positions with exchange-side TP/SL.

Why it exists: a newcomer running the committed config should see every kind of event within
minutes: fills, closes by take-profit and stop-loss fired on the exchange side (the engine did not
send them), partial closes by the strategy, and funding. Sizes are modest (a few hundred USDT of
notional on a 10000 USDT demo account) and it never holds more than ``max_positions`` at once.

Parameters ([strategy.params], all optional): ``symbols`` (default: every configured symbol),
``interval_s`` (5), ``max_positions`` (2), ``notional`` (USDT per position, 300), ``tp_pct`` and
``sl_pct`` (distance of the TP/SL triggers from the mark, 0.0015 = 0.15%), ``partial_chance``
(probability per tick of halving an open position by hand, 0.15), ``seed`` (random seed).
"""
from __future__ import annotations

import asyncio
import random
from collections.abc import Mapping
from decimal import ROUND_DOWN, ROUND_UP, Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from loguru import logger

from core.events import ClosePosition, PlaceOrder
from core.model import OrderSide, Origin, PositionSide
from core.money import quantize_down
from core.strategies.base import Strategy, StrategyError

if TYPE_CHECKING:
    from core.engine import Engine


def _number(params: Mapping[str, Any], key: str, default: str) -> Decimal:
    value = params.get(key, default)
    if isinstance(value, bool):
        raise StrategyError(f"[strategy.params] {key} must be a number, got {value!r}")
    try:
        d = Decimal(str(value))
    except InvalidOperation:
        raise StrategyError(f"[strategy.params] {key} must be a number, got {value!r}") from None
    if not d.is_finite() or d < 0:
        raise StrategyError(f"[strategy.params] {key} must be a number >= 0, got {value!r}")
    return d


class DemoScalper(Strategy):
    name = "demo_scalper"

    def __init__(self, params: Mapping[str, Any] | None = None) -> None:
        super().__init__(params)
        p = self.params
        symbols = p.get("symbols")
        if symbols is not None and (not isinstance(symbols, list) or not all(isinstance(s, str) for s in symbols)):
            raise StrategyError('[strategy.params] symbols must be an array of symbols like ["BTC/USDT:USDT"]')
        self.symbols: list[str] | None = symbols
        self.interval_s = float(_number(p, "interval_s", "5")) or 5.0  # float ok: seconds between decisions
        self.max_positions = int(_number(p, "max_positions", "2"))
        self.notional = _number(p, "notional", "300")
        self.tp_pct = _number(p, "tp_pct", "0.0015")
        self.sl_pct = _number(p, "sl_pct", "0.0015")
        self.partial_chance = float(_number(p, "partial_chance", "0.15"))  # float ok: a probability
        seed = p.get("seed")
        self.rng = random.Random(seed)

    async def run(self, engine: Engine) -> None:
        symbols = [s for s in (self.symbols or list(engine.instruments)) if s in engine.instruments]
        if not symbols:
            logger.warning("demo_scalper: none of its symbols is traded here; not trading")
            return
        logger.info(f"STRATEGY demo_scalper on {', '.join(symbols)}: max {self.max_positions} positions, "
                    f"{self.notional} USDT each, tp/sl {self.tp_pct}/{self.sl_pct}")
        while True:
            await asyncio.sleep(self.interval_s)
            try:
                await self.tick(engine, symbols)
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - a strategy bug is logged; the loop goes on
                logger.exception("demo_scalper tick failed")

    async def tick(self, engine: Engine, symbols: list[str]) -> None:
        """One decision: maybe halve a position, else maybe open one."""
        positions = engine.positions()
        if positions and self.rng.random() < self.partial_chance:
            pos = self.rng.choice(positions)
            inst = engine.instruments[pos.symbol]
            half = quantize_down(pos.contracts / 2, inst.lot_size)
            if half >= inst.min_size:
                result = await engine.submit(ClosePosition(pos.symbol, pos.pos_side, half),
                                             origin=Origin.STRATEGY)
                logger.info(f"STRATEGY demo_scalper partial close: {result.message}")
                return
        if len(positions) >= self.max_positions:
            return
        held = {p.symbol for p in positions}
        free = [s for s in symbols if s not in held]
        if not free:
            return
        symbol = self.rng.choice(free)
        inst = engine.instruments[symbol]
        mark = engine.mark(symbol)
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
        result = await engine.submit(
            PlaceOrder(symbol, side, contracts, take_profit=tp, stop_loss=sl), origin=Origin.STRATEGY)
        logger.info(f"STRATEGY demo_scalper open: {result.message}")
