"""The pre-trade risk guard: the trading state and the ``[risk]`` limits, checked before an entry leaves.

It is one check in the engine's chain (core/engine/checks.py) with ``gate = False``, so a command
that can only reduce exposure (a close, a reduce-only order, a cancel, a TP/SL move) never reaches
it: no limit can trap a trader in a position. Strategy and console entries pass the same check.

Orders in flight count: an entry that passed is booked in ``flight`` (core/risk/inflight.py)
before its request leaves and counts as filled until it fills or is canceled, so entries sent
together, or one right after another, cannot each pass against the same ledger.

Each refusal is one line naming the rule, e.g.
``RISK REFUSED max_order_notional: order 1,234.5 USDT > limit 1,000 USDT``.

Why it is cheap: it runs on the submit path of every order (a scalper's too). It reads the
ledger's open lives, the orders in flight and the book's marks, all in memory, does a handful
of Decimal multiplications, and keeps the last minute's send times in a deque (bench/risk.py measures it).
"""
from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING

from core.events import Command, PlaceOrder, TradingState
from core.model import Origin
from core.money import ZERO, plain
from core.risk.inflight import InFlight, grows_sign
from core.settings.config import RiskSettings

if TYPE_CHECKING:
    from core.engine.book import Book
    from core.engine.context import EngineContext

RATE_WINDOW_S = 60.0
_CENT = Decimal("0.01")


def _contracts_in_flight(contracts: Decimal) -> str:
    """The tail of a refusal that counted contracts still in flight ("" when none)."""
    return f" (counting {plain(contracts)} contracts in flight)" if contracts else ""


def _orders_in_flight(count: int) -> str:
    """The tail of a refusal that counted orders still in flight ("" when none)."""
    return f" (counting {count} order(s) in flight)" if count else ""


def usdt(value: Decimal) -> str:
    """An amount for a refusal line: thousands separators, at most 2 decimals, no trailing zeros."""
    text = f"{value.quantize(_CENT):,.2f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why an order was refused: the rule, the figure that broke it, the limit, and the line."""

    rule: str
    value: Decimal | None
    limit: Decimal | None
    message: str


class RiskGuard:
    """The risk check of the chain; ``on_refuse`` journals/publishes each refusal (RiskEvent)."""

    gate = False

    def __init__(self, settings: RiskSettings, ctx: EngineContext, book: Book,
                 state: Callable[[], TradingState], on_refuse: Callable[[Refusal, Origin], None],
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.settings = settings
        self._ctx = ctx
        self._book = book
        self._state = state
        self._on_refuse = on_refuse
        self._clock = clock
        self._sent: deque[float] = deque()
        self.flight = InFlight(clock)  # entries sent and not yet filled or canceled
        # run before each entry is checked (the control evaluates today's loss there, so a breach
        # halts before the entry leaves instead of at the monitor's next pass)
        self.before: Callable[[], None] | None = None
        self.halt_reason = ""  # shown in the refusal while halted (set by the control)

    def __call__(self, command: Command, origin: Origin) -> str | None:
        refusal = self.check(command)
        if refusal is None:
            return None
        self._on_refuse(refusal, origin)
        return refusal.message

    def check(self, command: Command) -> Refusal | None:
        """The first rule ``command`` breaks (None: it may go). Counts it for the rate limit."""
        if self.before is not None:
            self.before()
        state = self._state()
        if state is TradingState.PAUSED:
            return Refusal("paused", None, None, "RISK REFUSED paused: trading is paused, entries are "
                                                 "refused (closes and reduce-only orders still go)")
        if state is TradingState.HALTED:
            why = f" ({self.halt_reason})" if self.halt_reason else ""
            return Refusal("halted", None, None, f"RISK REFUSED halted: trading is halted{why}, entries "
                                                 "are refused until the trader resumes")
        if not isinstance(command, PlaceOrder):
            return None
        refusal = self._limits(command)
        if refusal is None:
            refusal = self._rate()
        return refusal

    def _limits(self, cmd: PlaceOrder) -> Refusal | None:
        s = self.settings
        if (s.max_order_notional is None and s.max_position_notional is None
                and s.max_total_notional is None and s.max_open_positions is None):
            return None
        inst = self._ctx.venue.instruments.get(cmd.symbol)
        if inst is None:
            return None  # the engine refuses an unknown symbol itself
        mark = self._book.mark_for(cmd.symbol)
        price = cmd.price if cmd.price is not None and cmd.price > 0 and cmd.order_type == "limit" else mark
        if price <= 0 and (s.max_order_notional is not None or s.max_position_notional is not None
                           or s.max_total_notional is not None):
            return Refusal("no_price", None, None, f"RISK REFUSED no_price: no mark price known for "
                                                   f"{cmd.symbol} yet, its notional cannot be checked")
        size = inst.contract_size
        if s.max_order_notional is not None:
            notional = abs(cmd.contracts) * size * price
            if notional > s.max_order_notional:
                return Refusal("max_order_notional", notional, s.max_order_notional,
                               f"RISK REFUSED max_order_notional: order {usdt(notional)} USDT > limit "
                               f"{usdt(s.max_order_notional)} USDT")
        return self._exposure(cmd, size, price)

    def _exposure(self, cmd: PlaceOrder, size: Decimal, price: Decimal) -> Refusal | None:
        """Position, total and count limits, for an order that grows its position.

        Orders in flight count as if they filled: on this order's own side (every buy in flight
        when it buys), and on both sides for the other positions (whichever is larger)."""
        s = self.settings
        ledger = self._ctx.ledger
        pending = self.flight.pending()
        key = (cmd.symbol, cmd.pos_side)
        current = ledger.signed_contracts(cmd.symbol, cmd.pos_side)
        up, down = pending.get(key, (ZERO, ZERO))
        delta = cmd.contracts * grows_sign(cmd.side, cmd.pos_side)
        base = current + up if delta > 0 else current - down
        after = base + delta
        if abs(after) <= abs(base):
            return None  # a non-reduce-only order that still only reduces: no exposure limit applies
        after_notional = abs(after) * size * price
        if s.max_position_notional is not None and after_notional > s.max_position_notional:
            return Refusal("max_position_notional", after_notional, s.max_position_notional,
                           f"RISK REFUSED max_position_notional: {cmd.symbol} position would be "
                           f"{usdt(after_notional)} USDT > limit {usdt(s.max_position_notional)} USDT"
                           + _contracts_in_flight(up if delta > 0 else down))
        if s.max_total_notional is None and s.max_open_positions is None:
            return None
        book = self._book
        instruments = self._ctx.venue.instruments
        total = after_notional
        count = 1
        others = {(symbol, pos_side) for symbol, pos_side, _ in ledger.open_coins()} | set(pending)
        for symbol, pos_side in others:
            if (symbol, pos_side) == key:
                continue
            held = ledger.signed_contracts(symbol, pos_side)
            o_up, o_down = pending.get((symbol, pos_side), (ZERO, ZERO))
            worst = max(abs(held + o_up), abs(held - o_down))
            inst = instruments.get(symbol)
            if worst == 0 or inst is None:
                continue
            count += 1
            total += worst * inst.contract_size * book.mark_for(symbol)
        if s.max_total_notional is not None and total > s.max_total_notional:
            return Refusal("max_total_notional", total, s.max_total_notional,
                           f"RISK REFUSED max_total_notional: exposure would be {usdt(total)} USDT "
                           f"> limit {usdt(s.max_total_notional)} USDT" + _orders_in_flight(self.flight.count()))
        opens = current == 0 and up == 0 and down == 0
        if s.max_open_positions is not None and opens and count > s.max_open_positions:
            return Refusal("max_open_positions", Decimal(count), Decimal(s.max_open_positions),
                           f"RISK REFUSED max_open_positions: {cmd.symbol} would be position {count} "
                           f"> limit {s.max_open_positions}" + _orders_in_flight(self.flight.count()))
        return None

    def _rate(self) -> Refusal | None:
        limit = self.settings.max_orders_per_minute
        if limit is None:
            return None
        t = self._clock()
        sent = self._sent
        while sent and t - sent[0] >= RATE_WINDOW_S:
            sent.popleft()
        if len(sent) >= limit:
            return Refusal("max_orders_per_minute", Decimal(len(sent) + 1), Decimal(limit),
                           f"RISK REFUSED max_orders_per_minute: order {len(sent) + 1} in the last minute "
                           f"> limit {limit}")
        sent.append(t)
        return None
