"""The Strategy API: one class with callbacks, and the ``ctx`` it acts through.

Why callbacks and nothing else: the engine already owns the connection, the journal, the positions
and the pre-trade checks; a strategy only reacts to what happened (a candle, a mark, a fill, a
close, one of its own orders, a timer tick) and reads the engine's picture through ``ctx``. The
host (core/strategies/host.py) calls the callbacks one at a time, in the order the events
happened, in the strategy's own thread and event loop, so a strategy never has to lock anything
and cannot stall the engine. Every order it sends goes through
``ctx.submit`` -> ``Engine.submit(cmd, origin=Origin.STRATEGY)``: the engine's check chain (risk
limits, pause, halt) sees it like any other order and the strategy has no other way out.

A callback that raises (anything, SystemExit included) or runs longer than ``[strategy]
max_callback_s`` stops the strategy (a notice and the log line ``STRATEGY STOPPED <name>: <why>``);
the engine, the journal and the console go on. docs/strategies.md is the guide.
"""
from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from core.support.errors import PerpdeskError

if TYPE_CHECKING:
    from core.events import AccountSnapshot, Candle, Command, CommandResult, MarkPrice, TradingState
    from core.model import CloseResult, Fill, Instrument, OrderUpdate, PositionSnapshot, PosSide


class StrategyError(PerpdeskError):
    """A strategy cannot start (unknown name, file or class, bad parameter); one plain line."""


class Context(Protocol):
    """What a strategy reads and does (``ctx`` in every callback). Implemented by the host.

    Reads are the engine's picture as published for this callback (refreshed after each
    ``submit`` and as events arrive): call them when you need them.
    """

    @property
    def name(self) -> str:
        """The strategy's name (log lines, notices)."""
        ...

    @property
    def symbols(self) -> tuple[str, ...]:
        """The symbols this engine trades ([exchange] symbols), e.g. ("BTC/USDT:USDT",)."""
        ...

    @property
    def instruments(self) -> Mapping[str, Instrument]:
        """Contract size, lot size, minimum size and tick size per symbol."""
        ...

    def positions(self) -> list[PositionSnapshot]:
        """Every open position of the account (the strategy's and the trader's alike)."""
        ...

    def position(self, symbol: str, pos_side: PosSide | str = "net") -> PositionSnapshot | None:
        """The open position of ``symbol`` (net mode: pos_side "net"), None when flat."""
        ...

    def account(self) -> AccountSnapshot | None:
        """Equity, available margin and unrealized PnL (None until the exchange sent it)."""
        ...

    def mark(self, symbol: str) -> Decimal | None:
        """The latest mark price of ``symbol``."""
        ...

    def candles(self, symbol: str, count: int | None = None) -> list[Candle]:
        """The closed one-minute candles of ``symbol``, oldest first (the last ``count``)."""
        ...

    def live_candle(self, symbol: str) -> Candle | None:
        """The open one-minute candle of ``symbol`` (its close is the last price)."""
        ...

    def today_pnl(self) -> Decimal:
        """Today's (UTC) realized net PnL plus the unrealized PnL of open positions, in USDT."""
        ...

    @property
    def trading_state(self) -> TradingState:
        """running, paused or halted (paused/halted: the engine refuses entries)."""
        ...

    @property
    def can_enter(self) -> bool:
        """True while the engine accepts new entries (trading state running)."""
        ...

    def now(self) -> datetime:
        """The current UTC time."""
        ...

    async def submit(self, command: Command) -> CommandResult:
        """Send an order, close, cancel or TP/SL move through the engine's checks. Never raises:
        a refusal or an exchange error is ``CommandResult(ok=False, message)``."""
        ...

    async def fetch_candles(self, symbol: str, bar: str = "1m", limit: int = 100) -> list[Candle]:
        """Older or longer-bar candles from the exchange, oldest first (raises VenueError)."""
        ...

    def log(self, message: str) -> None:
        """One INFO log line prefixed ``STRATEGY <name>``."""
        ...


class Strategy:
    """Subclass this, set ``name``, and override the callbacks you need (all are optional).

    Class attributes the host reads: ``warmup`` (closed one-minute candles fetched per symbol
    before ``on_start``, so indicators are ready at once) and ``tick_s`` (seconds between
    ``on_tick`` calls; None = no ticks). An instance may set them in ``__init__`` from params.
    ``__init__`` receives ``[strategy.params]``; raise ``StrategyError`` for a bad one.
    """

    name: ClassVar[str] = "strategy"
    warmup: int = 0
    tick_s: float | None = None  # float ok: a timer period, not money

    def __init__(self, params: Mapping[str, Any] | None = None) -> None:
        self.params: dict[str, Any] = dict(params or {})

    async def on_start(self, ctx: Context) -> None:
        """Once, after the warm-up candles are in ``ctx.candles``."""

    async def on_stop(self, ctx: Context) -> None:
        """Once, at shutdown or after a callback raised (orders already sent stay on the exchange)."""

    async def on_candle(self, ctx: Context, candle: Candle) -> None:
        """A one-minute candle of a traded symbol: the open bar on each change (``confirmed``
        False, possibly coalesced when the strategy is busy), then the closed bar (True)."""

    async def on_mark(self, ctx: Context, mark: MarkPrice) -> None:
        """A new mark price (only the latest per symbol while the strategy is busy)."""

    async def on_fill(self, ctx: Context, fill: Fill) -> None:
        """Any fill on the account (``fill.origin``: strategy, console, tp, sl, liquidation ...)."""

    async def on_close(self, ctx: Context, close: CloseResult) -> None:
        """A position closed in part or in full (``close.reason``, ``close.net_pnl``)."""

    async def on_order(self, ctx: Context, update: OrderUpdate) -> None:
        """A state change of one of this strategy's own orders (placed, filled, canceled, rejected)."""

    async def on_tick(self, ctx: Context) -> None:
        """Every ``tick_s`` seconds (time stops, housekeeping)."""


def number_param(params: Mapping[str, Any], key: str, default: str, *, positive: bool = False,
                 integer: bool = False) -> Decimal:
    """A ``[strategy.params]`` number as Decimal (TOML floats go through str, never float math);
    StrategyError naming the key for anything else."""
    value = params.get(key, default)
    expected = ("an integer" if integer else "a number") + (" > 0" if positive else " >= 0")
    if isinstance(value, bool):
        raise StrategyError(f"[strategy.params] {key} must be {expected}, got {value!r}")
    try:
        d = Decimal(str(value))
    except InvalidOperation:
        raise StrategyError(f"[strategy.params] {key} must be {expected}, got {value!r}") from None
    if not d.is_finite() or d < 0 or (positive and d == 0) or (integer and d != d.to_integral_value()):
        raise StrategyError(f"[strategy.params] {key} must be {expected}, got {value!r}")
    return d


def check_params(params: Mapping[str, Any], known: tuple[str, ...], strategy: str) -> None:
    """Refuse a misspelt ``[strategy.params]`` key with a close match, as the config does."""
    import difflib

    for key in params:
        if key not in known:
            close = difflib.get_close_matches(key, list(known), n=1)
            hint = f' — did you mean "{close[0]}"?' if close else " — known: " + ", ".join(known)
            raise StrategyError(f'unknown [strategy.params] key "{key}" for {strategy}{hint}')
