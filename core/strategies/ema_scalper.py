"""ema_scalper: a one-minute EMA trend scalper with an ATR volatility filter.

What it does, per traded symbol (net position mode):
- Indicators: a fast and a slow EMA of the one-minute closes, the open bar's live close included
  (so a move acts within the minute, not at its end), and the ATR (mean true range) of the last
  closed bars. The warm-up fetches enough history candles at start that it can act at once.
- Entry, when flat: the fast EMA is above the slow one and the last price is above the fast EMA
  (long), or both below (short), the ATR is between ``min_atr_pct`` and ``max_atr_pct`` of the
  price (no entries in a dead or a wild market), the engine accepts entries (not paused/halted),
  fewer than ``max_positions`` are open and ``cooldown_s`` has passed since the last exit there.
- Every entry is a market order with an exchange-side stop ``sl_atr`` ATRs away and a take-profit
  ``tp_atr`` ATRs away attached, so the exit does not depend on this process being alive.
- Size from a risk budget: ``risk_usdt`` lost at the stop -> contracts = risk / (stop distance x
  contract size), rounded down to the lot size and capped at ``max_notional`` USDT.
- Exits besides TP/SL: the trend of the closed bars flips against the position (reason
  ``strategy``), or the time stop: ``time_stop_min`` minutes after the entry the position is
  closed at market.

It manages only the positions it opened in this run: one it finds open at start (a restart, or
the trader's own) is left alone, with whatever TP/SL stands on the exchange, and takes a slot of
``max_positions``. It need not make money; it behaves like a strategy a person would write and, on the simulator's
own volatility, trades within seconds of start. Parameters ([strategy.params], all optional) are
listed in ``DEFAULTS`` and in docs/strategies.md.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Any

from core.events import Candle, ClosePosition, PlaceOrder
from core.model import CloseResult, Instrument, OrderSide
from core.money import ZERO, quantize_down
from core.strategies.base import Context, Strategy, StrategyError, check_params, number_param

DEFAULTS: dict[str, str] = {
    "fast": "5",  # fast EMA, in one-minute bars
    "slow": "13",  # slow EMA
    "atr_period": "14",  # closed bars in the ATR
    "min_atr_pct": "0.0002",  # ATR / price below this: too quiet to pay the fees
    "max_atr_pct": "0.01",  # above this: too wild for the stop
    "risk_usdt": "3",  # USDT lost if the stop fills
    "sl_atr": "1.5",  # stop distance, in ATRs
    "tp_atr": "2",  # take-profit distance, in ATRs
    "max_notional": "1500",  # cap per position, USDT
    "max_positions": "2",
    "time_stop_min": "3",  # close after this many minutes
    "cooldown_s": "20",  # wait after an exit before entering that symbol again
}
PARAMS = (*DEFAULTS, "symbols", "exit_on_flip")
FILL_WAIT = timedelta(seconds=15)  # an entry with no position after this long was not filled


@dataclass(frozen=True, slots=True)
class Signal:
    """The indicators of one symbol at one price."""

    price: Decimal
    fast: Decimal
    slow: Decimal
    atr: Decimal

    @property
    def trend(self) -> int:
        return 1 if self.fast > self.slow else -1 if self.fast < self.slow else 0


def ema(values: Sequence[Decimal], period: int) -> Decimal:
    """Exponential moving average (alpha 2/(n+1)), seeded with the mean of the first ``period``."""
    if len(values) < period:
        raise ValueError(f"ema needs {period} values, got {len(values)}")
    alpha = Decimal(2) / Decimal(period + 1)
    value = sum(values[:period], ZERO) / period
    for v in values[period:]:
        value += alpha * (v - value)
    return value


def atr(candles: Sequence[Candle], period: int) -> Decimal:
    """Mean true range of the last ``period`` candles (each needs the close before it)."""
    if len(candles) < period + 1:
        raise ValueError(f"atr needs {period + 1} candles, got {len(candles)}")
    window = candles[-(period + 1):]
    ranges = [max(c.high - c.low, abs(c.high - p.close), abs(c.low - p.close))
              for p, c in zip(window, window[1:], strict=False)]
    return sum(ranges, ZERO) / period


class EmaScalper(Strategy):
    name = "ema_scalper"
    tick_s = 1.0  # the time stop is checked every second

    def __init__(self, params: Mapping[str, Any] | None = None) -> None:
        super().__init__(params)
        p = self.params
        check_params(p, PARAMS, self.name)

        def num(key: str, *, positive: bool = True, integer: bool = False) -> Decimal:
            return number_param(p, key, DEFAULTS[key], positive=positive, integer=integer)

        self.fast, self.slow = int(num("fast", integer=True)), int(num("slow", integer=True))
        if self.fast >= self.slow:
            raise StrategyError(f"[strategy.params] fast ({self.fast}) must be smaller than slow ({self.slow})")
        self.atr_period = int(num("atr_period", integer=True))
        self.min_atr_pct, self.max_atr_pct = num("min_atr_pct", positive=False), num("max_atr_pct")
        if self.min_atr_pct >= self.max_atr_pct:
            raise StrategyError("[strategy.params] min_atr_pct must be smaller than max_atr_pct")
        self.risk_usdt, self.max_notional = num("risk_usdt"), num("max_notional")
        self.sl_atr, self.tp_atr = num("sl_atr"), num("tp_atr")
        self.max_positions = int(num("max_positions", integer=True))
        self.time_stop = timedelta(minutes=float(num("time_stop_min")))  # float ok: a duration
        self.cooldown = timedelta(seconds=float(num("cooldown_s", positive=False)))  # float ok
        flip = p.get("exit_on_flip", True)
        if not isinstance(flip, bool):
            raise StrategyError(f"[strategy.params] exit_on_flip must be true or false, got {flip!r}")
        self.exit_on_flip = flip
        symbols = p.get("symbols")
        if symbols is not None and (not isinstance(symbols, list) or not all(isinstance(s, str) for s in symbols)):
            raise StrategyError('[strategy.params] symbols must be an array of symbols like ["BTC/USDT:USDT"]')
        self.wanted: list[str] | None = symbols
        self.warmup = max(self.slow * 4, self.atr_period + 1)
        self.traded: list[str] = []
        self.entered: dict[str, datetime] = {}  # symbol -> when our entry was sent (ours to manage)
        self.closing: dict[str, datetime] = {}  # symbol -> when our close was sent
        self.last_exit: dict[str, datetime] = {}

    # ---------------------------------------------------------------- callbacks

    async def on_start(self, ctx: Context) -> None:
        self.traded = [s for s in (self.wanted or list(ctx.symbols)) if s in ctx.instruments]
        missing = sorted(set(self.wanted or ()) - set(self.traded))
        if missing:
            ctx.log(f"not trading {', '.join(missing)}: not in [exchange] symbols")
        ready = [s for s in self.traded if len(ctx.candles(s)) >= self.warmup // 2]
        ctx.log(f"on {', '.join(self.traded) or 'nothing'}: EMA {self.fast}/{self.slow}, ATR {self.atr_period} "
                f"in [{self.min_atr_pct}, {self.max_atr_pct}], risk {self.risk_usdt} USDT, stop {self.sl_atr} ATR, "
                f"tp {self.tp_atr} ATR, time stop {self.time_stop}, warm {len(ready)}/{len(self.traded)}")

    async def on_candle(self, ctx: Context, candle: Candle) -> None:
        if candle.symbol not in self.traded:
            return
        pos = ctx.position(candle.symbol)
        if pos is not None:
            # exits on closed bars only: an intrabar wiggle of the EMAs is no trend change
            if (self.exit_on_flip and candle.confirmed and candle.symbol in self.entered
                    and not self.is_closing(ctx, candle.symbol)):
                closed = self.signal(ctx, candle.symbol, live=False)
                if closed is not None and closed.trend == -pos.side.sign:
                    await self.close(ctx, candle.symbol, "trend flipped")
            return
        signal = self.signal(ctx, candle.symbol)
        if signal is None:
            return
        if self.may_enter(ctx, candle.symbol, signal):
            await self.enter(ctx, candle.symbol, signal)

    async def on_close(self, ctx: Context, close: CloseResult) -> None:
        if close.is_full and close.symbol in self.entered:
            self.entered.pop(close.symbol, None)
            self.closing.pop(close.symbol, None)
            self.last_exit[close.symbol] = ctx.now()
            ctx.log(f"EXIT {close.symbol} {close.reason.value} net {close.net_pnl:.4f} USDT")

    async def on_tick(self, ctx: Context) -> None:
        now = ctx.now()
        for symbol, sent in list(self.entered.items()):
            pos = ctx.position(symbol)
            if pos is None:
                if now - sent > FILL_WAIT:  # never filled, or closed while we did not see it
                    self.entered.pop(symbol, None)
                    self.closing.pop(symbol, None)
                continue
            if not self.is_closing(ctx, symbol) and now - pos.opened_at >= self.time_stop:
                await self.close(ctx, symbol, f"time stop ({self.time_stop})")

    # ---------------------------------------------------------------- decisions

    def signal(self, ctx: Context, symbol: str, *, live: bool = True) -> Signal | None:
        """The indicators now (``live``: the open bar's close counts as the newest close), or
        None while there is not enough history."""
        closed = ctx.candles(symbol, self.warmup)
        open_bar = ctx.live_candle(symbol) if live else None
        if len(closed) < max(self.slow, self.atr_period + 1):
            return None
        closes = [c.close for c in closed] + ([open_bar.close] if open_bar is not None else [])
        price = closes[-1]
        return Signal(price, ema(closes, self.fast), ema(closes, self.slow), atr(closed, self.atr_period))

    def may_enter(self, ctx: Context, symbol: str, s: Signal) -> bool:
        if not ctx.can_enter or symbol in self.entered or s.trend == 0 or s.price <= 0:
            return False
        last = self.last_exit.get(symbol)
        if last is not None and ctx.now() - last < self.cooldown:
            return False
        if len(self.entered) >= self.max_positions or len(ctx.positions()) >= self.max_positions:
            return False
        if not self.min_atr_pct <= s.atr / s.price <= self.max_atr_pct:
            return False
        return (s.price > s.fast) if s.trend > 0 else (s.price < s.fast)

    def size(self, inst: Instrument, s: Signal) -> Decimal:
        """Contracts that lose ``risk_usdt`` at the stop, capped at ``max_notional``; 0 if below
        the minimum size."""
        stop = self.sl_atr * s.atr
        by_risk = self.risk_usdt / (stop * inst.contract_size)
        by_cap = self.max_notional / (s.price * inst.contract_size)
        contracts = quantize_down(min(by_risk, by_cap), inst.lot_size)
        return contracts if contracts >= inst.min_size else ZERO

    async def enter(self, ctx: Context, symbol: str, s: Signal) -> None:
        inst = ctx.instruments[symbol]
        contracts = self.size(inst, s)
        if contracts == 0:
            return
        side = OrderSide.BUY if s.trend > 0 else OrderSide.SELL
        tick = inst.tick_size
        sl_dist, tp_dist = self.sl_atr * s.atr, self.tp_atr * s.atr
        if side is OrderSide.BUY:  # triggers on the tick grid, at least a tick away from the price
            tp = max(_on_grid(s.price + tp_dist, tick, ROUND_CEILING), s.price + tick)
            sl = min(_on_grid(s.price - sl_dist, tick, ROUND_FLOOR), s.price - tick)
        else:
            tp = min(_on_grid(s.price - tp_dist, tick, ROUND_FLOOR), s.price - tick)
            sl = max(_on_grid(s.price + sl_dist, tick, ROUND_CEILING), s.price + tick)
        if tp <= 0 or sl <= 0:
            return
        self.entered[symbol] = ctx.now()
        result = await ctx.submit(PlaceOrder(symbol, side, contracts, take_profit=tp, stop_loss=sl))
        ctx.log(f"ENTRY {side.value} {contracts} {symbol} @ ~{s.price} tp {tp} sl {sl} "
                f"(ema {s.fast:.2f}/{s.slow:.2f}, atr {s.atr:.4f}): "
                + (result.message if result.ok else f"refused: {result.message}"))
        if not result.ok:
            self.entered.pop(symbol, None)
            self.last_exit[symbol] = ctx.now()  # wait the cooldown before trying again

    def is_closing(self, ctx: Context, symbol: str) -> bool:
        """A close was sent less than FILL_WAIT ago (a failed one is retried after that)."""
        sent = self.closing.get(symbol)
        return sent is not None and ctx.now() - sent < FILL_WAIT

    async def close(self, ctx: Context, symbol: str, why: str) -> None:
        self.closing[symbol] = ctx.now()
        result = await ctx.submit(ClosePosition(symbol))
        ctx.log(f"CLOSE {symbol} ({why}): {result.message}")


def _on_grid(price: Decimal, tick: Decimal, rounding: str) -> Decimal:
    return (price / tick).to_integral_value(rounding) * tick
