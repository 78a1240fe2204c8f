"""EngineView: exactly what a viewer (the Textual console) asks of the engine, as a Protocol.

Why a Protocol and not ``engine: Any``: probing the engine with getattr says nothing of which
calls the console relies on, and a renamed method would fail only at run time. This file
lists them; mypy checks the real Engine (and any test double) against it. It lives outside the
engine package on purpose: a viewer depends on this small surface, not on the engine's modules.

Engines without a journal (a test double, a future read-only viewer) simply do not implement
``JournalView``; the console checks ``isinstance(engine, JournalView)`` and skips the history.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import date
from decimal import Decimal
from typing import Any, Protocol, runtime_checkable

from core.events import AccountSnapshot, Command, CommandResult, LinkState, RiskStatus, TradingState
from core.model import Instrument, PositionSnapshot, PosSide
from core.venue.base import VenueCapabilities


class ReconcileReportView(Protocol):
    """What the console shows of core.reconcile.compare.ReconcileReport."""

    @property
    def ok(self) -> bool: ...

    @property
    def rows(self) -> Sequence[Any]: ...  # each has symbol, field, journal, exchange, ok

    def lines(self) -> list[str]: ...


class HistoryPageView(Protocol):
    """One page of core.journal.history.HistoryPager."""

    @property
    def items(self) -> Sequence[Any]: ...  # Fill | JournalClose | FundingPayment

    @property
    def number(self) -> int: ...

    @property
    def more(self) -> bool: ...


class HistoryPagerView(Protocol):
    async def page(self, number: int) -> HistoryPageView: ...


class EngineView(Protocol):
    """The engine as the console uses it (docs/architecture.md "Engine API")."""

    read_only: bool

    @property
    def instruments(self) -> Mapping[str, Instrument]: ...

    def subscribe(self, callback: Callable[[object], None]) -> Callable[[], None]: ...

    async def submit(self, command: Command) -> CommandResult: ...

    def positions(self) -> list[PositionSnapshot]: ...

    def account(self) -> AccountSnapshot | None: ...

    def mark(self, symbol: str) -> Decimal | None: ...

    def links(self) -> dict[str, LinkState]: ...

    def estimate_close_pnl(self, symbol: str, pos_side: PosSide, contracts: Decimal) -> Decimal: ...

    async def reconcile(self) -> ReconcileReportView: ...

    @property
    def trading_state(self) -> TradingState: ...  # running / paused / halted

    def risk_status(self) -> RiskStatus: ...  # the strategy/risk line (also published on change)


@runtime_checkable
class ProtectionView(Protocol):
    """The exchange-side TP/SL the engine knows for a position (attached or algo orders).

    Optional, like JournalView: the `T` dialog prefills its fields from it when the engine
    implements it, and starts empty otherwise."""

    def tp_sl(self, symbol: str, pos_side: PosSide) -> tuple[Decimal | None, Decimal | None]: ...


@runtime_checkable
class CapabilitiesView(Protocol):
    """What the venue behind the engine can do (``core.venue.base.VenueCapabilities``).

    Optional: the console hides and refuses what the venue cannot do when the engine says; an
    engine that does not (a test double, an engine reached over a socket) gets ``FULL``."""

    @property
    def capabilities(self) -> VenueCapabilities: ...


FULL = VenueCapabilities("the exchange")  # everything offered: what a viewer assumes when not told


def capabilities_of(engine: object) -> VenueCapabilities:
    return engine.capabilities if isinstance(engine, CapabilitiesView) else FULL


@runtime_checkable
class RestingView(Protocol):
    """What rests on the exchange now: (open orders, live trigger orders such as TP/SL and stops).

    Optional: the kill switch's dialog counts what the kill will cancel from it (a REST read),
    and falls back to what the console knows otherwise. Raises on a failed read."""

    async def resting(self) -> tuple[int, int]: ...


@runtime_checkable
class JournalView(Protocol):
    """The journal reads a viewer needs: today's rows (seeding) and older pages (history)."""

    async def today_history(self, day: date) -> Any: ...  # core.journal.history.DayHistory

    def history_pager(self, kind: Any, page_size: int = 200) -> HistoryPagerView: ...
