"""PendingEngine: what the console shows while the engine is still starting.

Why: the exchange library (ccxt) takes most of a second to import and the venue a round trip or
more to connect; the trader should see the panes at once, with the header saying "connecting",
instead of a blank terminal. The console paints against this stand-in first and swaps in the
real engine (``PerpdeskApp.attach``) once the stack is up. Nothing here can trade: a command sent
before then is refused with "not connected yet" (the keys that need the engine say so too).
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from decimal import Decimal

from core.events import AccountSnapshot, Command, CommandResult, LinkState, RiskStatus, TradingState
from core.model import Instrument, PositionSnapshot
from core.service.view import ReconcileReportView
from core.support.errors import PerpdeskError

NOT_CONNECTED = "not connected yet"


class NotConnected(PerpdeskError):
    """A request that needs the engine, made before it started."""


class PendingEngine:
    """An EngineView (core/service/view.py) with no engine behind it yet."""

    def __init__(self, *, read_only: bool = False) -> None:
        self.read_only = read_only

    @property
    def instruments(self) -> Mapping[str, Instrument]:
        return {}

    def subscribe(self, callback: Callable[[object], None]) -> Callable[[], None]:
        return lambda: None  # nothing is ever published: the real engine's feed replaces it

    async def submit(self, command: Command) -> CommandResult:
        return CommandResult(False, NOT_CONNECTED)

    def positions(self) -> list[PositionSnapshot]:
        return []

    def account(self) -> AccountSnapshot | None:
        return None

    def mark(self, symbol: str) -> Decimal | None:
        return None

    def links(self) -> dict[str, LinkState]:
        return {"private": LinkState.CONNECTING}

    def estimate_close_pnl(self, symbol: str, pos_side: str, contracts: Decimal) -> Decimal:
        return Decimal(0)

    @property
    def trading_state(self) -> TradingState:
        return TradingState.RUNNING  # unknown yet; the keys that act on it wait for the engine

    def risk_status(self) -> RiskStatus:
        return RiskStatus(TradingState.RUNNING, "none", False, Decimal(0), None, Decimal(0), None, "")

    async def reconcile(self) -> ReconcileReportView:
        raise NotConnected(NOT_CONNECTED)
