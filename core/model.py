"""The trading domain: instruments, fills, orders, positions, funding and close results.

All of these are frozen dataclasses: they are facts that happened (or snapshots of a state) and are
passed between the venue, the engine, the ledger, the journal and the console without copying
worries. Money and sizes are Decimal; sizes are carried both in contracts (what OKX trades) and in
coins (what a trader thinks in), with coins = contracts x contract_size computed exactly.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum

from core.ids import ms_from_utc as ms_from_utc  # part of the shared contract; defined in core.ids
from core.ids import utc_from_ms as utc_from_ms
from core.money import ZERO, quantize_down


class OrderSide(StrEnum):
    BUY = "buy"
    SELL = "sell"

    @property
    def sign(self) -> int:
        return 1 if self is OrderSide.BUY else -1

    def opposite(self) -> OrderSide:
        return OrderSide.SELL if self is OrderSide.BUY else OrderSide.BUY


class PositionSide(StrEnum):
    """Direction of an open position."""

    LONG = "long"
    SHORT = "short"

    @property
    def sign(self) -> int:
        return 1 if self is PositionSide.LONG else -1

    @property
    def closing_order_side(self) -> OrderSide:
        return OrderSide.SELL if self is PositionSide.LONG else OrderSide.BUY


class PosSide(StrEnum):
    """OKX posSide: the one net position of an instrument, or one leg of a hedge-mode pair.

    A position life is keyed by (symbol, PosSide). Values equal the OKX strings, so a parser's
    plain "net" and ``PosSide.NET`` compare and hash alike.
    """

    NET = "net"
    LONG = "long"
    SHORT = "short"


class OrderType(StrEnum):
    """The order types the engine places (OKX ordType)."""

    MARKET = "market"
    LIMIT = "limit"


class MarginMode(StrEnum):
    """OKX tdMode / mgnMode of a position."""

    CROSS = "cross"
    ISOLATED = "isolated"

    @staticmethod
    def of(value: str) -> MarginMode:
        """``value`` as a MarginMode; cross (OKX's default) when empty or unknown."""
        return MarginMode.ISOLATED if value == MarginMode.ISOLATED else MarginMode.CROSS


class PosMode(StrEnum):
    """OKX account position mode: one net position per instrument, or separate long/short legs."""

    NET = "net"
    HEDGE = "long_short"


class Origin(StrEnum):
    """Who caused an order or fill (orders CSV ``origin``)."""

    CONSOLE = "console"
    STRATEGY = "strategy"
    EXTERNAL = "external"
    TP = "tp"
    SL = "sl"
    LIQUIDATION = "liquidation"
    ADL = "adl"


class CloseReason(StrEnum):
    """Why a position shrank (trades CSV ``reason``)."""

    MANUAL = "manual"
    STRATEGY = "strategy"
    TP = "tp"
    SL = "sl"
    LIQUIDATION = "liquidation"
    ADL = "adl"
    EXTERNAL = "external"

    @staticmethod
    def from_origin(origin: Origin) -> CloseReason:
        return _REASON_BY_ORIGIN[origin]


_REASON_BY_ORIGIN = {
    Origin.CONSOLE: CloseReason.MANUAL,
    Origin.STRATEGY: CloseReason.STRATEGY,
    Origin.EXTERNAL: CloseReason.EXTERNAL,
    Origin.TP: CloseReason.TP,
    Origin.SL: CloseReason.SL,
    Origin.LIQUIDATION: CloseReason.LIQUIDATION,
    Origin.ADL: CloseReason.ADL,
}


class Liquidity(StrEnum):
    MAKER = "maker"
    TAKER = "taker"


class RowSource(StrEnum):
    """Trades CSV ``source``: built by our ledger, or built/corrected from exchange history."""

    LEDGER = "ledger"
    EXCHANGE = "exchange"


def iso(ts: datetime) -> str:
    """ISO-8601 UTC with milliseconds, the journal's time format."""
    return ts.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class Instrument:
    """A linear perpetual swap. ``symbol`` is ccxt unified (BTC/USDT:USDT); ``inst_id`` OKX's."""

    symbol: str
    inst_id: str
    contract_size: Decimal  # coins per contract (OKX ctVal x ctMult)
    lot_size: Decimal  # contract step
    min_size: Decimal  # contracts
    tick_size: Decimal  # price step
    settle_ccy: str = "USDT"
    base_ccy: str = ""
    max_market_size: Decimal | None = None  # contracts per market order (OKX maxMktSz), if known
    max_limit_size: Decimal | None = None  # contracts per limit order (OKX maxLmtSz), if known

    def to_coins(self, contracts: Decimal) -> Decimal:
        return contracts * self.contract_size

    def to_contracts(self, coins: Decimal) -> Decimal:
        """Coins to contracts, rounded DOWN to the lot size (never close more than asked)."""
        return quantize_down(coins / self.contract_size, self.lot_size)

    def price_decimals(self) -> int:
        return max(0, -self.tick_size.normalize().as_tuple().exponent)  # type: ignore[operator]


@dataclass(frozen=True, slots=True)
class Fill:
    """One execution. ``fee`` is a cost: >= 0 paid, < 0 rebate (SPEC sign convention)."""

    fill_id: str
    order_id: str
    client_order_id: str
    symbol: str
    side: OrderSide
    contracts: Decimal
    contract_size: Decimal
    price: Decimal
    fee: Decimal
    fee_ccy: str
    ts: datetime
    reduce_only: bool = False
    liquidity: Liquidity = Liquidity.TAKER
    origin: Origin = Origin.EXTERNAL
    pos_side: PosSide = PosSide.NET
    category: str = "normal"  # OKX: normal, full_liquidation, partial_liquidation, adl, ...
    algo_id: str = ""
    fill_pnl: Decimal | None = None  # OKX fillPnl, the exchange's own price PnL for this fill
    liq_penalty: Decimal = ZERO  # cost >= 0, only on liquidation fills

    @property
    def coins(self) -> Decimal:
        return self.contracts * self.contract_size


class OrderState(StrEnum):
    PLACED = "placed"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    CANCELED = "canceled"
    REJECTED = "rejected"


@dataclass(frozen=True, slots=True)
class OrderUpdate:
    """An order state change (orders CSV rows other than ``fill``)."""

    order_id: str
    client_order_id: str
    symbol: str
    side: OrderSide
    order_type: str  # market | limit | conditional ...
    contracts: Decimal
    contract_size: Decimal
    price: Decimal | None
    state: OrderState
    ts: datetime
    reduce_only: bool = False
    origin: Origin = Origin.EXTERNAL
    filled_contracts: Decimal = ZERO
    avg_price: Decimal | None = None
    message: str = ""  # rejection reason


@dataclass(frozen=True, slots=True)
class FundingPayment:
    """One funding settlement on one position. ``amount`` is a cash flow: + received, - paid."""

    bill_id: str
    symbol: str
    position_id: str
    rate: Decimal
    position_contracts: Decimal
    position_coins: Decimal
    mark_price: Decimal
    amount: Decimal
    ccy: str
    ts: datetime


@dataclass(frozen=True, slots=True)
class PositionSnapshot:
    """An open position as the trader sees it (positions pane, positions_open CSV)."""

    symbol: str
    position_id: str
    pos_side: PosSide
    side: PositionSide
    contracts: Decimal
    contract_size: Decimal
    entry_price: Decimal
    mark_price: Decimal
    unrealized_pnl: Decimal
    funding_accrued: Decimal
    leverage: Decimal
    margin_mode: MarginMode
    liq_price: Decimal | None
    opened_at: datetime
    ts: datetime

    @property
    def coins(self) -> Decimal:
        return self.contracts * self.contract_size

    @property
    def notional(self) -> Decimal:
        return self.coins * self.mark_price


@dataclass(frozen=True, slots=True)
class CloseResult:
    """One reducing execution of a position (trades CSV row). Sizes in coins, plus contracts.

    ``fee`` holds every fee charged to this position life since its previous close row (opening
    fees included), and ``funding`` every funding flow since then, so that over the position's
    life the rows' ``net_pnl`` add up to the exchange's realizedPnl.
    """

    closed_at: datetime
    symbol: str
    position_id: str
    side: PositionSide
    reason: CloseReason
    size_before: Decimal
    size_closed: Decimal
    size_after: Decimal
    contracts_closed: Decimal
    contract_size: Decimal
    entry_price: Decimal
    exit_price: Decimal
    gross_pnl: Decimal
    fee: Decimal
    liq_penalty: Decimal
    funding: Decimal
    opened_at: datetime
    source: RowSource = RowSource.LEDGER
    fill_ids: tuple[str, ...] = field(default=())

    @property
    def net_pnl(self) -> Decimal:
        return self.gross_pnl - self.fee - self.liq_penalty + self.funding

    @property
    def close_key(self) -> str:
        """Identity used by the journal to refuse a second copy of the same close."""
        first = self.fill_ids[0] if self.fill_ids else self.closed_at.isoformat()
        return f"{self.position_id}|{first}"

    @property
    def is_full(self) -> bool:
        return self.size_after == 0
