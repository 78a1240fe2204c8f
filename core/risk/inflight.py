"""Orders in flight: entries sent (or being sent) and not yet filled or canceled.

Why: the ledger only holds what has filled. A check that read the ledger alone would pass twenty
buys sent together (each sees the position flat), and two quick buys too, as the first one's
fill is not back when the second is checked. So every entry that passes the
risk guard is booked here at once (synchronously, before its request leaves) and stays until
the exchange says it is filled, canceled or rejected; the guard counts it as if it had filled.

What is counted: the part of each order not yet in the ledger. A fill moves contracts from here
to the ledger (the engine publishes a Fill after booking it); a terminal order update
(filled / canceled / rejected) caps the order at what it filled. Updates may arrive before the
order's REST reply names its id: they are kept (a few hundred, by order id) and applied when it
does. Worst case, counted on purpose: between a fill landing and the reply, the order counts
twice for a moment (a refusal too many, never one too few).
"""
from __future__ import annotations

import itertools
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

from core.events import PlaceOrder
from core.model import Fill, OrderSide, OrderState, OrderUpdate, PosSide
from core.money import ZERO

DONE_STATES = frozenset({OrderState.FILLED, OrderState.CANCELED, OrderState.REJECTED})
EARLY_KEPT = 500  # updates of order ids not known yet (their REST reply still on its way)
DONE_GRACE_S = 30.0  # a finished order whose fills never showed stops counting after this


def grows_sign(side: OrderSide, pos_side: PosSide) -> int:
    """+1 when ``side`` adds to the position as the ledger signs it (net: a buy; hedge: the
    leg's own side), else -1."""
    opening = OrderSide.SELL if pos_side == PosSide.SHORT else OrderSide.BUY
    return 1 if side == opening else -1


@dataclass(slots=True)
class _Order:
    symbol: str
    pos_side: PosSide
    sign: int  # +1: adds to the ledger's signed contracts, -1: takes from them
    contracts: Decimal
    filled: Decimal = ZERO  # fills seen, already in the ledger
    final: Decimal | None = None  # what it filled in all, once it is done
    done_at: float | None = None
    placed_at: float = 0.0

    def open(self) -> Decimal:
        target = self.contracts if self.final is None else self.final
        return max(target - self.filled, ZERO)


@dataclass(slots=True)
class _Early:
    filled: Decimal = ZERO
    final: Decimal | None = None


class InFlight:
    """The entries between the risk guard and the ledger (``RiskGuard.flight``)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._tickets = itertools.count(1)
        self._sending: dict[int, _Order] = {}  # passed the guard, REST reply not back yet
        self._orders: dict[str, _Order] = {}  # by order id
        self._early: OrderedDict[str, _Early] = OrderedDict()

    # ---------------------------------------------------------------- the command's side

    def reserve(self, cmd: PlaceOrder) -> int:
        """Book ``cmd`` now (before its request leaves); returns the ticket for ``placed``/``failed``."""
        ticket = next(self._tickets)
        self._sending[ticket] = _Order(cmd.symbol, cmd.pos_side, grows_sign(cmd.side, cmd.pos_side),
                                       abs(cmd.contracts))
        return ticket

    def placed(self, ticket: int, order_id: str) -> None:
        """The exchange took it as ``order_id``: it counts until filled or canceled."""
        order = self._sending.pop(ticket, None)
        if order is None:
            return
        order.placed_at = self._clock()
        early = self._early.pop(order_id, None)
        if early is not None:
            order.filled, order.final = early.filled, early.final
            if early.final is not None:
                order.done_at = self._clock()
        if order.open() > 0:
            self._orders[order_id] = order

    def failed(self, ticket: int) -> None:
        """It was not placed (refused, or the send was abandoned): it no longer counts."""
        self._sending.pop(ticket, None)

    def count(self) -> int:
        """Orders in flight (sending, or resting / partly filled at the exchange)."""
        return sum(1 for order in self._live() if order.open() > 0)

    @property
    def sending(self) -> int:
        """Entries whose request has left or is leaving and whose reply has not come back."""
        return len(self._sending)

    # ---------------------------------------------------------------- the exchange's side

    def _find(self, order_id: str, client_order_id: str) -> tuple[str, _Order | None]:
        """The order an update is about: by order id, else by client id (the id a send whose
        reply named no order id was booked under)."""
        order = self._orders.get(order_id)
        if order is None and client_order_id and client_order_id in self._orders:
            return client_order_id, self._orders[client_order_id]
        return order_id, order

    def on_event(self, event: object) -> None:
        if isinstance(event, Fill):
            key, order = self._find(event.order_id, event.client_order_id)
            if order is None:
                if self._sending:
                    self._remember(event.order_id).filled += event.contracts
                return
            order.filled += event.contracts
            self._drop_if_done(key, order)
        elif isinstance(event, OrderUpdate) and event.state in DONE_STATES:
            key, order = self._find(event.order_id, event.client_order_id)
            if order is None:
                if self._sending:
                    self._remember(event.order_id).final = event.filled_contracts
                return
            order.final = event.filled_contracts
            order.done_at = self._clock()
            self._drop_if_done(key, order)

    def _remember(self, order_id: str) -> _Early:
        early = self._early.get(order_id)
        if early is None:
            early = self._early[order_id] = _Early()
            while len(self._early) > EARLY_KEPT:
                self._early.popitem(last=False)
        return early

    def _drop_if_done(self, order_id: str, order: _Order) -> None:
        if order.open() <= 0:
            del self._orders[order_id]

    def now(self) -> float:
        return self._clock()

    def prune(self, open_ids: set[str], placed_before: float) -> int:
        """After a resync: an order placed before it began that the exchange no longer shows
        open is done (its fills, if any, were backfilled into the ledger), even though its
        update was lost with the stream. Returns how many stopped counting."""
        gone = [oid for oid, o in self._orders.items()
                if o.placed_at < placed_before and oid not in open_ids]
        for oid in gone:
            del self._orders[oid]
        return len(gone)

    # ---------------------------------------------------------------- what the guard reads

    def _live(self) -> list[_Order]:
        now = self._clock()
        stale = [oid for oid, o in self._orders.items()
                 if o.done_at is not None and now - o.done_at > DONE_GRACE_S]
        for oid in stale:
            del self._orders[oid]
        return [*self._sending.values(), *self._orders.values()]

    def pending(self) -> dict[tuple[str, PosSide], tuple[Decimal, Decimal]]:
        """Per (symbol, pos_side): (contracts in flight that add, contracts that take away)."""
        out: dict[tuple[str, PosSide], tuple[Decimal, Decimal]] = {}
        for order in self._live():
            left = order.open()
            if left <= 0:
                continue
            key = (order.symbol, order.pos_side)
            up, down = out.get(key, (ZERO, ZERO))
            out[key] = (up + left, down) if order.sign > 0 else (up, down + left)
        return out
