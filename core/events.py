"""Events and commands that cross the boundary between the venue, the engine and its subscribers.

Domain facts (Fill, OrderUpdate, CloseResult, FundingPayment, PositionSnapshot) live in
core.model and are published as they are; this module holds the rest. The console only ever
receives these objects through ``Engine.subscribe`` and only ever acts through ``Engine.submit``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import IntEnum, StrEnum

from core.model import (
    CloseResult,
    Fill,
    FundingPayment,
    OrderSide,
    OrderType,
    OrderUpdate,
    PositionSnapshot,
    PosSide,
)

# ---------------------------------------------------------------- venue -> engine (raw-ish facts)


@dataclass(frozen=True, slots=True)
class PositionPush:
    """The exchange's view of one position (OKX positions channel / REST item). pos = 0 when flat."""

    symbol: str
    pos_side: PosSide
    position_key: str  # OKX posId
    contracts: Decimal  # signed in net mode, positive in hedge mode
    entry_price: Decimal | None
    mark_price: Decimal | None
    unrealized_pnl: Decimal | None
    realized_pnl: Decimal | None
    fee: Decimal | None  # OKX sign: negative = paid
    funding_fee: Decimal | None  # OKX sign: signed cash flow
    leverage: Decimal | None
    margin_mode: str
    liq_price: Decimal | None
    created_at: datetime | None
    ts: datetime
    # exchange-side TP/SL triggers of the position's close algos (OKX closeOrderAlgo), if any
    take_profit: Decimal | None = None
    stop_loss: Decimal | None = None


@dataclass(frozen=True, slots=True)
class AccountSnapshot:
    """Equity and margin in the settle currency (header)."""

    equity: Decimal
    available: Decimal
    unrealized_pnl: Decimal
    ccy: str
    ts: datetime


@dataclass(frozen=True, slots=True)
class MarkPrice:
    symbol: str
    price: Decimal
    ts: datetime


@dataclass(frozen=True, slots=True)
class Candle:
    """One candlestick of ``bar`` (OKX bar names: "1m", "5m", "1H" ...) for ``symbol``.

    Why frozen and published as it is: a strategy reads candles as facts; the open bar is pushed
    again on every change with ``confirmed`` False, and once more with True when it closes.
    ``ts`` is the bar's open time; ``volume`` is in contracts (OKX ``vol`` for swaps).
    """

    symbol: str
    bar: str
    ts: datetime
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal
    confirmed: bool


@dataclass(frozen=True, slots=True)
class FundingBill:
    """One funding bill as the exchange books it (bills type 8, or a funding_fee push)."""

    bill_id: str
    symbol: str
    amount: Decimal  # signed cash flow, + received
    position_contracts: Decimal
    mark_price: Decimal
    rate: Decimal | None
    ccy: str
    ts: datetime


class CloseKind(IntEnum):
    """How a position life (or part of it) was closed, as an exchange's close history says.

    What each venue maps onto it: OKX positions-history ``type`` is these numbers as they are;
    Bybit has no such field, so ``core.venue.bybit_lives`` derives it from the execTypes of the
    closing executions (Trade: partial/full, BustTrade: liquidation, AdlTrade: ADL). The values
    are kept equal to OKX's numbers so an old caller's int still compares equal.
    """

    UNKNOWN = 0  # the record did not say (reason: external)
    PARTIAL = 1
    FULL = 2
    LIQUIDATION = 3
    PARTIAL_LIQUIDATION = 4
    ADL_PARTIAL = 5
    ADL_FULL = 6

    @classmethod
    def of(cls, value: object) -> CloseKind:
        """``value`` (a number or its string) as a CloseKind; one it does not know is UNKNOWN."""
        try:
            return cls(int(str(value)))
        except ValueError:
            return cls.UNKNOWN


@dataclass(frozen=True, slots=True)
class CloseRecord:
    """The exchange's own account of one position life's closes so far: what the engine checks
    its close rows against (close confirmation, reconcile). Exchange signs: ``fee`` and
    ``liq_penalty`` negative when paid, ``funding_fee`` + when received.

    What each venue maps onto it: OKX, one positions-history item (``position_key`` = posId);
    Bybit, which keeps no position id nor per-life history, one life rebuilt by
    ``core.venue.bybit_lives`` from executions and per-order closed PnL (``position_key`` =
    symbol + open time in ms).
    """

    symbol: str
    position_key: str  # the venue's id of the life (OKX posId; Bybit symbol:open-ms)
    pos_side: PosSide
    direction: str  # long | short
    close_type: CloseKind
    open_avg_price: Decimal
    close_avg_price: Decimal
    open_max_contracts: Decimal
    closed_contracts: Decimal
    pnl: Decimal
    fee: Decimal
    funding_fee: Decimal
    liq_penalty: Decimal
    realized_pnl: Decimal
    created_at: datetime
    updated_at: datetime


# The record under the name of the OKX positions-history item it reads like; callers import both.
PositionHistoryRecord = CloseRecord


@dataclass(frozen=True, slots=True)
class FundingSignal:
    """A funding settlement happened (OKX: balance_and_position eventType funding_fee).

    The push carries no bill id, so it cannot become a journal row by itself; it tells the engine
    to fetch funding bills now. ``symbol`` is None when the push named no known instrument.
    """

    symbol: str | None
    ts: datetime


@dataclass(frozen=True, slots=True)
class MalformedPush:
    """A push (or a whole frame) was skipped because it could not be read.

    Why it is an event: a skipped private push may have carried a fill, a position change or a
    funding settlement, so the engine must not trust its picture until it has resynced from REST.
    """

    stream: str  # public, private or business
    channel: str  # "" when the frame itself was unreadable
    reason: str
    ts: datetime


@dataclass(frozen=True, slots=True)
class FundingRate:
    """Current funding rate of a swap (public funding-rate channel), for display."""

    symbol: str
    rate: Decimal
    next_funding_time: datetime | None
    ts: datetime


class LinkState(StrEnum):
    CONNECTING = "connecting"
    CONNECTED = "connected"
    RESYNCING = "resyncing"
    DISCONNECTED = "disconnected"


@dataclass(frozen=True, slots=True)
class StreamStatus:
    """Connection state of one stream (public/private/business) and its last measured latency."""

    stream: str
    state: LinkState
    latency_ms: float | None = None  # float ok: a timing, not money
    message: str = ""
    ts: datetime | None = None


# ---------------------------------------------------------------- engine -> subscribers


class NoticeLevel(StrEnum):
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"


@dataclass(frozen=True, slots=True)
class Notice:
    """A one-line message for the trader (order rejected, connection lost, journal error)."""

    level: NoticeLevel
    text: str
    ts: datetime | None = None


@dataclass(frozen=True, slots=True)
class PositionGone:
    """A position went flat; panes drop its row."""

    symbol: str
    pos_side: PosSide
    position_id: str


class TradingState(StrEnum):
    """running: everything allowed; paused: entries refused, exits allowed; halted: entries
    refused and resting entry orders canceled (persisted beside the journal until resumed)."""

    RUNNING = "running"
    PAUSED = "paused"
    HALTED = "halted"


class RiskEventKind(StrEnum):
    """The ``event`` column of risk_YYYY-MM-DD.csv (SPEC)."""

    REFUSED = "refused"
    HALT = "halt"
    FLATTEN = "flatten"
    KILL = "kill"
    PAUSE = "pause"
    RESUME = "resume"


@dataclass(frozen=True, slots=True)
class RiskEvent:
    """One risk event: a refused order, a halt, a flatten, the kill switch, pause or resume.

    Journaled (risk family: ts, event, rule, value, limit, state, message) and published."""

    ts: datetime
    event: RiskEventKind
    rule: str  # e.g. daily_loss_limit, max_order_notional, kill_switch, manual
    value: Decimal | None
    limit: Decimal | None
    state: TradingState  # the state after the event
    message: str


@dataclass(frozen=True, slots=True)
class RiskStatus:
    """What the strategy/risk line shows; published on every change (and at most a few Hz)."""

    state: TradingState
    strategy: str  # strategy name ("none" when none runs)
    strategy_running: bool
    today_net: Decimal  # today's realized net + unrealized at mark (USDT)
    daily_loss_limit: Decimal | None
    exposure: Decimal  # total notional at mark (USDT)
    max_total_notional: Decimal | None
    last_event: str  # one line, "" when none yet


# Everything the engine publishes to subscribers (``Engine.subscribe``).
EngineEvent = (
    Fill
    | OrderUpdate
    | CloseResult
    | FundingPayment
    | PositionSnapshot
    | PositionGone
    | AccountSnapshot
    | MarkPrice
    | StreamStatus
    | Notice
    | FundingRate
    | RiskEvent
    | RiskStatus
    | Candle
)

# ---------------------------------------------------------------- subscribers -> engine


@dataclass(frozen=True, slots=True)
class PlaceOrder:
    symbol: str
    side: OrderSide
    contracts: Decimal
    order_type: OrderType = OrderType.MARKET
    price: Decimal | None = None
    reduce_only: bool = False
    pos_side: PosSide = PosSide.NET
    take_profit: Decimal | None = None  # attached exchange-side TP trigger (last price)
    stop_loss: Decimal | None = None  # attached exchange-side SL trigger (last price)


@dataclass(frozen=True, slots=True)
class ClosePosition:
    """Close ``contracts`` of a position, or all of it when None.

    ``position_id``: the life the trader confirmed closing. When given, the engine refuses if the
    life open now is another one (closed and reopened, flipped from outside), so a confirmation
    never acts on something other than what it showed.
    """

    symbol: str
    pos_side: PosSide = PosSide.NET
    contracts: Decimal | None = None
    position_id: str | None = None


@dataclass(frozen=True, slots=True)
class CloseAll:
    pass


@dataclass(frozen=True, slots=True)
class CancelOrder:
    symbol: str
    order_id: str


@dataclass(frozen=True, slots=True)
class PauseStrategy:
    """``s``: paused refuses new entries (strategy and manual); exits and reduce-only still go."""


@dataclass(frozen=True, slots=True)
class ResumeTrading:
    """``s`` again (paused -> running), or the trader's explicit confirmation (halted -> running)."""


@dataclass(frozen=True, slots=True)
class KillSwitch:
    """``K``: cancel every open order and algo, close every position, halt (persisted)."""


@dataclass(frozen=True, slots=True)
class SetTpSl:
    """``T``: set or move the exchange-side TP/SL of one position (None leaves that leg as it is).

    ``position_id`` binds the command to the life the trader saw; a different life is refused."""

    symbol: str
    pos_side: PosSide = PosSide.NET
    take_profit: Decimal | None = None
    stop_loss: Decimal | None = None
    position_id: str | None = None


Command = (PlaceOrder | ClosePosition | CloseAll | CancelOrder | PauseStrategy | ResumeTrading
           | KillSwitch | SetTpSl)


@dataclass(frozen=True, slots=True)
class CommandResult:
    ok: bool
    message: str
    order_ids: tuple[str, ...] = field(default=())
