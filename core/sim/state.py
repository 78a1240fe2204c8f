"""Mutable records the simulated exchange keeps: accounts, positions, orders, algos, fills, bills.

Kept apart from the matching logic so that ``okx_shapes`` can serialise them without importing
the engine. All money is Decimal; OKX's sign conventions are kept as-is (fee negative = paid,
balChg negative = paid) so serialisation is a plain copy and never flips a sign by accident.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from decimal import Decimal

from core.money import ZERO


class IdGen:
    """Numeric string ids that keep growing across simulator restarts.

    Starting from the wall clock (ms x 10^6) means a journal that survives a simulator restart
    never sees a reused billId/tradeId/ordId, which it would otherwise drop as a duplicate.
    """

    def __init__(self, start_ms: int | None = None) -> None:
        self.last = (start_ms if start_ms is not None else int(time.time() * 1000)) * 1_000_000

    def next(self) -> str:
        self.last += 1
        return str(self.last)

    def resume(self, last: int) -> None:
        """Continue after ``last`` (a saved counter), never below what the clock already gave."""
        self.last = max(self.last, last)


@dataclass(slots=True)
class Position:
    """One position slot (instId + mgnMode + posSide). ``pos`` is signed in net mode.

    The slot outlives the position lives that pass through it (posId is stable, as on OKX);
    the per-life counters below are reset when a new life opens (``c_time`` changes).
    """

    inst_id: str
    mgn_mode: str
    pos_side: str  # net | long | short
    pos_id: str
    pos: Decimal = ZERO
    avg_px: Decimal = ZERO
    lever: Decimal = Decimal(10)
    margin: Decimal = ZERO  # isolated only: margin allocated to the position
    c_time: int = 0
    u_time: int = 0
    # per-life accumulators (OKX sign conventions)
    pnl: Decimal = ZERO
    fee: Decimal = ZERO
    funding_fee: Decimal = ZERO
    liq_penalty: Decimal = ZERO
    open_max_pos: Decimal = ZERO
    close_total_pos: Decimal = ZERO
    close_notional: Decimal = ZERO  # sum(closed contracts x close px), for closeAvgPx
    history: PositionHistory | None = None
    last_trade_id: str = ""
    life_dir: int = 1  # +1 long / -1 short: direction of the current (or last) life
    # Isolated funding is booked to the position (bill balChg 0, posBalChg = amount), not to the
    # cash; it reaches the cash with the trade bill that closes the life.
    pos_funding: Decimal = ZERO

    @property
    def direction_sign(self) -> int:
        """+1 long, -1 short, 0 flat."""
        if self.pos_side == "long":
            return 1 if self.pos != 0 else 0
        if self.pos_side == "short":
            return -1 if self.pos != 0 else 0
        return 1 if self.pos > 0 else (-1 if self.pos < 0 else 0)

    @property
    def size(self) -> Decimal:
        return abs(self.pos)

    def realized(self) -> Decimal:
        return self.pnl + self.fee + self.funding_fee + self.liq_penalty


@dataclass(slots=True)
class PositionHistory:
    """One positions-history record: one per position life, updated on every close of that life."""

    inst_id: str
    mgn_mode: str
    pos_side: str
    pos_id: str
    direction: str
    c_time: int
    u_time: int
    lever: Decimal
    open_avg_px: Decimal
    close_avg_px: Decimal
    open_max_pos: Decimal
    close_total_pos: Decimal
    pnl: Decimal
    fee: Decimal
    funding_fee: Decimal
    liq_penalty: Decimal
    type: str  # 1 partial close, 2 close all, 3 liquidation, 4 partial liquidation, 5/6 ADL
    trigger_px: Decimal | None = None

    @property
    def realized_pnl(self) -> Decimal:
        return self.pnl + self.fee + self.funding_fee + self.liq_penalty


@dataclass(slots=True)
class Order:
    """A normal order. The ``fill_*`` fields describe the latest fill (what a push carries)."""

    ord_id: str
    cl_ord_id: str
    tag: str
    inst_id: str
    side: str
    pos_side: str
    ord_type: str  # market | limit | post_only | ioc | fok
    td_mode: str
    px: Decimal | None
    sz: Decimal
    reduce_only: bool
    lever: Decimal
    c_time: int
    u_time: int
    state: str = "live"
    acc_fill_sz: Decimal = ZERO
    fill_notional: Decimal = ZERO
    fee: Decimal = ZERO
    pnl: Decimal = ZERO
    category: str = "normal"
    source: str = ""
    algo_id: str = ""
    algo_cl_ord_id: str = ""
    attach_algo_ords: list[dict[str, str]] = field(default_factory=list)
    attached: list[dict[str, str]] = field(default_factory=list)  # attachAlgoOrds as echoed by GET order
    cancel_source: str = ""
    frozen: Decimal = ZERO  # margin reserved while resting (opening part)
    # latest fill
    trade_id: str = ""
    fill_sz: Decimal = ZERO
    fill_px: Decimal | None = None
    fill_fee: Decimal = ZERO
    fill_pnl: Decimal = ZERO
    fill_time: int = 0
    exec_type: str = ""
    liq_penalty: Decimal = ZERO
    fill_mark_px: Decimal | None = None

    @property
    def avg_px(self) -> Decimal | None:
        if self.acc_fill_sz == 0:
            return None
        return self.fill_notional / self.acc_fill_sz

    @property
    def remaining(self) -> Decimal:
        return self.sz - self.acc_fill_sz

    @property
    def is_open(self) -> bool:
        return self.state in ("live", "partially_filled")


@dataclass(slots=True)
class AlgoOrder:
    """A conditional (TP and/or SL), oco or trigger order held by the exchange until it fires."""

    algo_id: str
    algo_cl_ord_id: str
    cl_ord_id: str
    tag: str
    inst_id: str
    side: str
    pos_side: str
    ord_type: str  # conditional | oco | trigger
    td_mode: str
    sz: Decimal
    reduce_only: bool
    lever: Decimal
    c_time: int
    u_time: int
    tp_trigger_px: Decimal | None = None
    tp_ord_px: Decimal | None = None  # -1 = market
    tp_trigger_px_type: str = "last"
    sl_trigger_px: Decimal | None = None
    sl_ord_px: Decimal | None = None
    sl_trigger_px_type: str = "last"
    trigger_px: Decimal | None = None
    order_px: Decimal | None = None
    trigger_px_type: str = "last"
    trigger_up: bool = True  # trigger orders: fire when price rises to triggerPx (else falls)
    close_fraction: str = ""  # "1" = close the whole position when fired
    state: str = "live"  # live | effective | canceled | order_failed
    actual_side: str = ""
    actual_px: Decimal | None = None
    actual_sz: Decimal | None = None
    trigger_time: int = 0
    ord_id: str = ""
    attached_to: str = ""  # ordId of the entry order when created from attachAlgoOrds


@dataclass(slots=True)
class FillRecord:
    """One row of trade/fills and trade/fills-history."""

    inst_id: str
    trade_id: str
    ord_id: str
    cl_ord_id: str
    bill_id: str
    tag: str
    side: str
    pos_side: str
    fill_px: Decimal
    fill_sz: Decimal
    fee: Decimal
    fill_pnl: Decimal
    exec_type: str
    ts: int
    mark_px: Decimal
    sub_type: str = ""  # OKX fill subType (1/2 trade, 100-107 liquidation, 125-128 ADL); "" = by side


@dataclass(slots=True)
class Bill:
    """One balance change (account/bills, bills-archive). ``bal_chg`` is exactly what moved."""

    bill_id: str
    inst_id: str
    type: str  # 2 trade, 5 liquidation, 8 funding fee, 9 ADL
    sub_type: str
    bal_chg: Decimal
    bal: Decimal  # cash balance after
    sz: Decimal
    px: Decimal
    pnl: Decimal
    fee: Decimal
    ts: int
    mgn_mode: str
    ord_id: str = ""
    trade_id: str = ""
    exec_type: str = ""
    ccy: str = "USDT"
    cl_ord_id: str = ""  # trade bills: the order's clOrdId
    mark_px: Decimal | None = None  # trade bills: fillMarkPx, the mark at the fill
    pos_bal_chg: Decimal = ZERO  # isolated funding: what moved into/out of the position's margin
    pos_bal: Decimal = ZERO  # the position's margin after that


@dataclass(slots=True)
class Account:
    """The trading account of one API key (single-currency USDT margin)."""

    uid: str
    api_key: str
    secret: str
    passphrase: str
    cash: Decimal
    pos_mode: str = "net_mode"  # net_mode | long_short_mode
    levers: dict[tuple[str, str], Decimal] = field(default_factory=dict)  # (instId, mgnMode)
    positions: dict[tuple[str, str, str], Position] = field(default_factory=dict)
    orders: dict[str, Order] = field(default_factory=dict)
    open_orders: dict[str, Order] = field(default_factory=dict)  # the live subset of ``orders``
    orders_by_cl: dict[str, str] = field(default_factory=dict)
    algos: dict[str, AlgoOrder] = field(default_factory=dict)
    fills: list[FillRecord] = field(default_factory=list)
    bills: list[Bill] = field(default_factory=list)
    pos_history: list[PositionHistory] = field(default_factory=list)
    pos_ids: dict[tuple[str, str, str], str] = field(default_factory=dict)
    u_time: int = 0
