"""A complete perpdesk strategy: a one-minute range breakout with exchange-side TP/SL.

Use it from config.toml (the path is relative to config.toml's folder):

    [strategy]
    path = "docs/examples/my_strategy.py"

    [strategy.params]
    lookback = 20          # closed one-minute candles that make the range
    notional = 500         # USDT per entry
    hold_minutes = 5       # time stop

Rules: when flat, the last price breaking above the highest high of the last ``lookback`` closed
candles buys (below the lowest low sells), with the stop at the other side of the range's middle
and the take-profit as far again; the position is closed after ``hold_minutes`` whatever happens.
It only acts through ``ctx``: every order passes the engine's risk checks, and while the trader
has paused (or a limit has halted) trading it does not try to enter.
"""
from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from decimal import Decimal
from typing import Any

from core.events import Candle, ClosePosition, PlaceOrder
from core.model import CloseResult, Fill, OrderSide, OrderState, OrderUpdate
from core.strategies.base import Context, Strategy, StrategyError


class RangeBreakout(Strategy):
    name = "range_breakout"
    tick_s = 1.0  # on_tick every second: the time stop

    def __init__(self, params: Mapping[str, Any] | None = None) -> None:
        super().__init__(params)
        try:
            self.lookback = int(self.params.get("lookback", 20))
            self.notional = Decimal(str(self.params.get("notional", "500")))
            self.hold = timedelta(minutes=float(self.params.get("hold_minutes", 5)))
        except (TypeError, ValueError, ArithmeticError) as exc:
            raise StrategyError(f"[strategy.params] of {self.name}: {exc}") from None
        if self.lookback < 2 or self.notional <= 0:
            raise StrategyError("[strategy.params] lookback must be >= 2 and notional > 0")
        self.warmup = self.lookback  # history candles fetched per symbol before on_start
        self.mine: set[str] = set()  # symbols it entered: the time stop leaves other positions alone

    async def on_start(self, ctx: Context) -> None:
        ctx.log(f"watching {', '.join(ctx.symbols)}: {self.lookback}-minute range, {self.notional} USDT")

    async def on_candle(self, ctx: Context, candle: Candle) -> None:
        history = ctx.candles(candle.symbol, self.lookback)
        busy = candle.symbol in self.mine or ctx.position(candle.symbol) is not None
        if len(history) < self.lookback or busy or not ctx.can_enter:
            return
        live = ctx.live_candle(candle.symbol) or candle
        high = max(c.high for c in history)
        low = min(c.low for c in history)
        if low < live.close < high:
            return
        inst = ctx.instruments[candle.symbol]
        contracts = inst.to_contracts(self.notional / live.close)  # rounded down to the lot size
        if contracts < inst.min_size:
            return
        middle = (high + low) / 2
        tick = inst.tick_size
        if live.close >= high:
            side, stop = OrderSide.BUY, min(middle, live.close - tick)
            target = live.close + (live.close - stop)
        else:
            side, stop = OrderSide.SELL, max(middle, live.close + tick)
            target = live.close - (stop - live.close)
        stop, target = (stop / tick).quantize(Decimal(1)) * tick, (target / tick).quantize(Decimal(1)) * tick
        result = await ctx.submit(PlaceOrder(candle.symbol, side, contracts, take_profit=target, stop_loss=stop))
        if result.ok:
            self.mine.add(candle.symbol)
        ctx.log(f"breakout {side.value} {contracts} {candle.symbol}: {result.message}")

    async def on_tick(self, ctx: Context) -> None:
        for pos in ctx.positions():
            if pos.symbol in self.mine and ctx.now() - pos.opened_at >= self.hold:
                self.mine.discard(pos.symbol)  # one close per entry
                result = await ctx.submit(ClosePosition(pos.symbol, pos.pos_side))
                ctx.log(f"time stop {pos.symbol}: {result.message}")

    async def on_fill(self, ctx: Context, fill: Fill) -> None:
        ctx.log(f"fill {fill.side.value} {fill.contracts} {fill.symbol} @ {fill.price} ({fill.origin.value})")

    async def on_order(self, ctx: Context, update: OrderUpdate) -> None:
        if update.state in (OrderState.REJECTED, OrderState.CANCELED) and update.filled_contracts == 0:
            self.mine.discard(update.symbol)  # the entry never filled: free to try again
            ctx.log(f"order {update.order_id} {update.state.value}: {update.message}")

    async def on_close(self, ctx: Context, close: CloseResult) -> None:
        if close.is_full:
            self.mine.discard(close.symbol)
        ctx.log(f"closed {close.symbol} by {close.reason.value}: net {close.net_pnl} USDT, "
                f"today {ctx.today_pnl():.2f} USDT")
