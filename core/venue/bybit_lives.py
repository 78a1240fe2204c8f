"""Position lives on Bybit, which has no position id: the records closes are confirmed against.

Bybit keeps a position as (symbol, positionIdx) and tells closes per CLOSING ORDER
(/v5/position/closed-pnl). The engine confirms a closed life against one record per life (OKX's
positions-history shape, ``PositionHistoryRecord``). This module builds those records:

- life boundaries from the executions (size leaving and returning to zero; a fill that flips the
  position closes one life and opens the next at the same time);
- the money from the exchange's closed-PnL records of the life's closing orders, when every one of
  them is there and carries its fees: ``pnl = closedPnl + openFee + closeFee`` (gross) and, for a
  life that has ended, ``fee = -(openFee + closeFee)`` (OKX sign, negative = paid); a life still
  open (a partial record) has paid opening fees for the size it still holds, so its fee is every
  execFee so far, as OKX's positions-history counts it; without complete records the executions
  alone (``execPnl``, ``execFee``) give the money, so a record is never missing, only less
  independent;
- funding from the Funding executions of the symbol while the life was open;
- ``realized_pnl = pnl + fee + funding_fee``.

Hedge mode: each leg (the fill's ``pos_side``, its order's positionIdx) has its own lives, and a
funding execution goes to the leg that pays or receives it (longs pay a positive rate).
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from core.events import CloseKind, FundingBill, PositionHistoryRecord
from core.model import Fill, OrderSide, PosSide
from core.money import ZERO
from core.venue.bybit_parse import ClosedPnl

# life category -> (kind while still open, kind once ended); a plain Trade life is (PARTIAL, FULL)
CLOSE_TYPES = {"adl": (CloseKind.ADL_PARTIAL, CloseKind.ADL_FULL),
               "full_liquidation": (CloseKind.LIQUIDATION, CloseKind.LIQUIDATION),
               "partial_liquidation": (CloseKind.PARTIAL_LIQUIDATION, CloseKind.PARTIAL_LIQUIDATION)}


@dataclass(slots=True)
class _Life:
    symbol: str
    pos_side: PosSide
    direction: int
    opened: datetime
    updated: datetime
    avg: Decimal = ZERO  # average entry of the open size (adds re-weight it, closes keep it)
    max_size: Decimal = ZERO
    closed: Decimal = ZERO  # contracts
    close_value: Decimal = ZERO
    exec_pnl: Decimal = ZERO
    exec_fee: Decimal = ZERO  # cost, > 0 paid
    orders: list[str] = field(default_factory=list)
    category: str = "normal"


def lives(fills: Iterable[Fill], funding: Iterable[FundingBill], closes: Iterable[ClosedPnl],
          key_prefix: str = "") -> list[PositionHistoryRecord]:
    """One record per position life that has closed at least partly, oldest first."""
    by_order: dict[str, list[ClosedPnl]] = {}
    for c in closes:
        by_order.setdefault(c.order_id, []).append(c)
    bills = sorted(funding, key=lambda b: b.ts)
    out: list[PositionHistoryRecord] = []
    by_leg: dict[tuple[str, PosSide], list[Fill]] = {}
    for f in fills:
        by_leg.setdefault((f.symbol, PosSide(f.pos_side)), []).append(f)
    for (symbol, leg), group in by_leg.items():
        size = ZERO
        life: _Life | None = None
        for f in sorted(group, key=lambda f: (f.ts, f.fill_id)):
            sign = 1 if f.side is OrderSide.BUY else -1
            close = min(f.contracts, abs(size)) if size and (size > 0) != (sign > 0) else ZERO
            opened = f.contracts - close
            if close and life is not None:
                share = close / f.contracts
                life.closed += close
                life.close_value += close * f.price
                life.exec_pnl += f.fill_pnl or ZERO
                life.exec_fee += f.fee * share
                life.updated = f.ts
                if f.order_id not in life.orders:
                    life.orders.append(f.order_id)
                if f.category != "normal":
                    life.category = f.category
                size += sign * close
                if size == 0:
                    out.append(_record(life, by_order, bills, True, key_prefix))
                    life = None
            if opened:
                if life is None:
                    life = _Life(symbol, leg, sign, f.ts, f.ts)
                before = abs(size)
                life.avg = (life.avg * before + f.price * opened) / (before + opened)
                life.exec_fee += f.fee * opened / f.contracts
                size += sign * opened
                life.max_size = max(life.max_size, abs(size))
                life.updated = max(life.updated, f.ts)
        if life is not None and life.closed:
            out.append(_record(life, by_order, bills, False, key_prefix))
    out.sort(key=lambda r: (r.updated_at, r.created_at))
    return out


def _record(life: _Life, by_order: dict[str, list[ClosedPnl]], bills: list[FundingBill], full: bool,
            key_prefix: str) -> PositionHistoryRecord:
    records = [c for oid in life.orders for c in by_order.get(oid, [])]
    complete = all(oid in by_order for oid in life.orders) and all(
        c.open_fee is not None and c.close_fee is not None for c in records)
    fees, pnl = life.exec_fee, life.exec_pnl
    if complete and records:
        closed_fees = sum(((c.open_fee or ZERO) + (c.close_fee or ZERO) for c in records), ZERO)
        pnl = sum((c.closed_pnl for c in records), ZERO) + closed_fees
        if full:  # a life still open has paid opening fees closed-pnl has not attributed yet
            fees = closed_fees
    funding = sum((b.amount for b in bills if b.symbol == life.symbol and life.opened <= b.ts <= life.updated
                   and _on_leg(b, life.pos_side)), ZERO)
    leg = "" if life.pos_side is PosSide.NET else f"{life.pos_side.value}:"
    partial, whole = CLOSE_TYPES.get(life.category, (CloseKind.PARTIAL, CloseKind.FULL))
    return PositionHistoryRecord(
        symbol=life.symbol,
        position_key=f"{key_prefix}{life.symbol}:{leg}{int(life.opened.timestamp() * 1000)}",
        pos_side=life.pos_side,
        direction="long" if life.direction > 0 else "short",
        close_type=whole if full else partial,
        open_avg_price=life.avg,
        close_avg_price=life.close_value / life.closed,
        open_max_contracts=life.max_size,
        closed_contracts=life.closed,
        pnl=pnl,
        fee=-fees,
        funding_fee=funding,
        liq_penalty=ZERO,
        realized_pnl=pnl - fees + funding,
        created_at=life.opened,
        updated_at=life.updated,
    )


def _on_leg(bill: FundingBill, leg: PosSide) -> bool:
    """Whether a funding bill is the ``leg``'s: any leg in one-way mode; in hedge mode the long
    leg pays a positive rate and receives a negative one, the short leg the other way round."""
    if leg is PosSide.NET or bill.rate is None or bill.rate == 0 or bill.amount == 0:
        return True
    return ((bill.amount < 0) == (bill.rate > 0)) == (leg is PosSide.LONG)
