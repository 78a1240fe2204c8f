"""What every exchange adapter is to the engine: the ``Venue`` protocol and its one error type.

Why a protocol here and not in the engine: the engine, reconcile and the runner depend on this
module only, never on an exchange's module, so a second exchange is one new module (implementing
``Venue``) plus one line in ``core.venue.registry``. Everything crossing the protocol is a domain
type from ``core.model`` / ``core.events``; nothing exchange-specific leaks through it.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Protocol

from core.events import AccountSnapshot, Candle, FundingBill, PlaceOrder, PositionHistoryRecord, PositionPush
from core.model import Fill, Instrument, Origin
from core.support.errors import PerpdeskError


class VenueErrorKind(StrEnum):
    """Why a venue call failed, for callers that react differently (retry, look up, resync)."""

    AUTH = "auth"  # key, secret, passphrase or environment (demo vs live) refused
    CONFIG = "config"  # the venue settings cannot work (unknown venue, missing url or symbol)
    REJECTED = "rejected"  # the exchange refused the order (margin, size, price): nothing executed
    BAD_REQUEST = "bad_request"  # the request itself was wrong (our side), nothing executed
    NOT_FOUND = "not_found"  # no such order
    RATE_LIMIT = "rate_limit"  # refused by the rate limit, nothing executed: may be re-sent
    UNAVAILABLE = "unavailable"  # the exchange answered with a 5xx / maintenance
    TIMEOUT = "timeout"  # no answer in time: a write may or may not have executed
    UNREACHABLE = "unreachable"  # no connection made: nothing was sent
    DISCONNECTED = "disconnected"  # the connection broke mid-request: a write may have executed
    CLOCK = "clock"  # the request time was rejected (local clock off)
    MALFORMED = "malformed"  # the exchange's answer could not be read
    UNKNOWN = "unknown"


# Kinds after which an idempotent read is worth retrying (transient, nothing wrong with the request).
TRANSIENT = frozenset({VenueErrorKind.RATE_LIMIT, VenueErrorKind.UNAVAILABLE, VenueErrorKind.TIMEOUT,
                       VenueErrorKind.UNREACHABLE, VenueErrorKind.DISCONNECTED})
# Kinds after which a write's outcome is unknown: look the order up before saying anything.
OUTCOME_UNKNOWN = frozenset({VenueErrorKind.UNAVAILABLE, VenueErrorKind.TIMEOUT, VenueErrorKind.DISCONNECTED})


class VenueError(PerpdeskError):
    """One plain sentence: what failed at the exchange and what to do about it.

    ``kind`` (a ``VenueErrorKind``, which compares equal to its string value) says why;
    ``VenueError("message")`` alone is an UNKNOWN failure.
    """

    def __init__(self, message: str, kind: VenueErrorKind | str | None = None) -> None:
        super().__init__(message)
        self.kind = VenueErrorKind(kind) if kind else VenueErrorKind.UNKNOWN


@dataclass(frozen=True, slots=True)
class VenueCapabilities:
    """What a venue can do, declared once by each venue (its ``capabilities``), so the console
    hides and refuses what the exchange behind it cannot do instead of failing at the exchange.

    ``position_tp_sl``: a TP/SL on the whole position (OKX closeOrderAlgo, Bybit trading-stop);
    ``order_tp_sl``: a TP/SL attached to a new order; ``isolated_margin`` and ``hedge_mode``:
    the venue trades (and books) isolated positions and long/short legs; ``funding_interval``:
    the usual time between funding settlements; ``contracts_are_coins``: one contract is one
    coin on every instrument (Bybit linear quantities), so contracts and coins are one number.
    """

    name: str
    position_tp_sl: bool = True
    order_tp_sl: bool = True
    isolated_margin: bool = True
    hedge_mode: bool = True
    funding_interval: timedelta = timedelta(hours=8)
    contracts_are_coins: bool = False


@dataclass(frozen=True, slots=True)
class RestingOrder:
    """An order or trigger order still live at the exchange (what a halt or the kill switch cancels).

    ``trigger``: a conditional order that waits for a price (a TP/SL or a stop) rather than a
    plain order: OKX algo orders, Bybit's StopOrder-filtered orders (TakeProfit, StopLoss,
    conditional). ``take_profit`` and ``stop_loss`` are its trigger prices (None when it has no
    such leg)."""

    symbol: str
    order_id: str
    trigger: bool
    reduce_only: bool
    pos_side: str = "net"
    side: str = ""
    take_profit: Decimal | None = None
    stop_loss: Decimal | None = None
    close_fraction: str = ""


class Venue(Protocol):
    """What the engine, reconcile and the runner need from an exchange adapter.

    Sizes are in contracts, money is Decimal, times are aware UTC datetimes. ``run_streams``
    hands the sink the ``core.events`` venue events (Fill, OrderUpdate, PositionPush,
    AccountSnapshot, MarkPrice, StreamStatus, FundingSignal, FundingRate, MalformedPush) and the
    one-minute ``Candle`` of every symbol (open bar on each change, then once confirmed).
    ``fetch_candles`` returns the newest ``limit`` bars, oldest first (strategy warm-up).
    """

    instruments: dict[str, Instrument]
    symbols: tuple[str, ...]
    # The exchange's id of the account the credentials trade (OKX account/config ``uid``), set by
    # connect(); "" before it, or when the venue cannot tell. A journal belongs to one account.
    account_uid: str
    capabilities: VenueCapabilities  # what the console may offer on this venue
    # How far back the venue's fill, close and funding history answers (OKX 90 days, Bybit two
    # years): reconcile reads no journal day older than this.
    history_window: timedelta

    @property
    def address(self) -> str: ...
    @property
    def clock_offset_s(self) -> float: ...  # this computer's clock minus the exchange's (s)
    async def connect(self) -> None: ...
    async def close(self) -> None: ...
    async def fetch_balance(self) -> AccountSnapshot: ...
    async def fetch_positions(self) -> list[PositionPush]: ...
    async def fetch_fills(self, since: datetime | None) -> list[Fill]: ...
    async def fetch_positions_history(self, since: datetime | None) -> list[PositionHistoryRecord]: ...
    async def fetch_funding_bills(self, since: datetime | None) -> list[FundingBill]: ...
    async def fetch_candles(self, symbol: str, bar: str = "1m", limit: int = 100) -> list[Candle]: ...
    async def place_order(self, cmd: PlaceOrder, origin: Origin) -> str: ...
    async def cancel_order(self, symbol: str, order_id: str) -> None: ...
    async def close_position(self, symbol: str, pos_side: str = "net",
                             contracts: Decimal | None = None,
                             origin: Origin = Origin.CONSOLE) -> str: ...
    async def fetch_open_orders(self) -> list[RestingOrder]: ...
    async def fetch_open_triggers(self) -> list[RestingOrder]: ...  # TP/SL and stop orders
    async def cancel_triggers(self, triggers: list[RestingOrder]) -> None: ...
    async def set_position_tp_sl(self, symbol: str, pos_side: str, take_profit: Decimal | None,
                                 stop_loss: Decimal | None) -> str: ...
    async def run_streams(self, sink: Callable[[object], None],
                          symbols: list[str] | None = None, *, candles: bool = True) -> None: ...


class ExchangeSettingsLike(Protocol):
    """The attributes of core.settings.config.ExchangeSettings a venue reads (duck-typed on purpose: the
    venues do not import the config)."""

    @property
    def venue(self) -> str: ...
    @property
    def sandbox(self) -> bool: ...
    @property
    def url(self) -> str | None: ...
    @property
    def symbols(self) -> tuple[str, ...]: ...


class CredentialsLike(Protocol):
    """The attributes of core.settings.config.Credentials every venue reads (an exchange that needs more,
    such as OKX's passphrase, extends it)."""

    @property
    def api_key(self) -> str: ...
    @property
    def secret(self) -> str: ...
