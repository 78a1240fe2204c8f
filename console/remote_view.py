"""The engine's state as an attached console knows it, and the EngineView reads over it.

``RemoteView`` keeps what the engine's snapshot and the events since then said (positions with
their TP/SL, account, marks, links, risk line, instruments, what the venue can do) and the ids of
the fills, closes and funding bills already handed to the console, so a row is handed over once
whether it came live or from the journal after a resync. It answers the console's EngineView,
ProtectionView and CapabilitiesView calls from that state; console/remote.py's ``RemoteEngine``
feeds it from the control socket (connection life, snapshots, commands).
"""
from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from decimal import Context, Decimal, localcontext
from typing import Any

from console.errors import log_line
from core.events import (
    AccountSnapshot,
    CloseAll,
    ClosePosition,
    Command,
    LinkState,
    MarkPrice,
    PositionGone,
    RiskStatus,
    SetTpSl,
    StreamStatus,
    TradingState,
)
from core.model import CloseResult, Fill, FundingPayment, Instrument, PositionSnapshot, PosSide
from core.service.server import position_facts
from core.service.view import FULL
from core.venue.base import VenueCapabilities

PosKey = tuple[str, str]


def row_ts(event: object) -> datetime | None:
    """When a fills / closes / funding row happened (the exchange's time, as journaled)."""
    if isinstance(event, (Fill, FundingPayment)):
        return event.ts
    if isinstance(event, CloseResult):
        return event.closed_at
    return None


def row_id(event: object) -> str | None:
    """The id a fills / closes / funding row is de-duplicated by (console/feed.py Rows)."""
    if isinstance(event, Fill):
        return "f|" + event.fill_id
    if isinstance(event, CloseResult):
        return "c|" + event.close_key
    if isinstance(event, FundingPayment):
        return "b|" + event.bill_id
    return None


def dec_or_none(raw: Any) -> Decimal | None:
    """A price of the wire (a string) or None."""
    return Decimal(raw) if isinstance(raw, str) else None


def now_utc() -> datetime:
    return datetime.now(UTC)


class RemoteView:
    """EngineView + ProtectionView + CapabilitiesView over the state the engine's frames said."""

    def __init__(self, *, read_only: bool = False) -> None:
        self.role_read_only = read_only
        self.read_only = read_only
        self._subscribers: list[Callable[[object], None]] = []
        self._instruments: dict[str, Instrument] = {}
        self._capabilities = FULL  # until the engine says (an engine before 1.2 never does)
        self._positions: dict[PosKey, PositionSnapshot] = {}
        self._tpsl: dict[PosKey, tuple[Decimal | None, Decimal | None]] = {}
        self._account: AccountSnapshot | None = None
        self._marks: dict[str, Decimal] = {}
        self._links: dict[str, LinkState] = {}
        self._risk = RiskStatus(TradingState.RUNNING, "none", False, Decimal(0), None, Decimal(0),
                                None, "")
        self._delivered: set[str] = set()
        self._newest_row: datetime | None = None  # the newest row handed over (exchange time)

    def _apply(self, event: object, tpsl: Any = None) -> None:
        if isinstance(event, PositionSnapshot):
            key = (event.symbol, event.pos_side.value)
            self._positions[key] = event
            if isinstance(tpsl, list) and len(tpsl) == 2:
                self._tpsl[key] = (dec_or_none(tpsl[0]), dec_or_none(tpsl[1]))
        elif isinstance(event, PositionGone):
            key = (event.symbol, event.pos_side.value)
            shown = self._positions.get(key)
            if shown is not None and shown.position_id == event.position_id:
                del self._positions[key]
                self._tpsl.pop(key, None)
        elif isinstance(event, MarkPrice):
            self._marks[event.symbol] = event.price
        elif isinstance(event, AccountSnapshot):
            self._account = event
        elif isinstance(event, StreamStatus):
            self._links[event.stream] = event.state
        elif isinstance(event, RiskStatus):
            self._risk = event
        else:
            row = row_id(event)
            if row is not None:
                if row in self._delivered:
                    return  # already handed over (from the journal after a resync)
                self._delivered.add(row)
                self._saw_row(event)
        self._publish(event)

    def _saw_row(self, event: object) -> None:
        ts = row_ts(event)
        if ts is not None and (self._newest_row is None or ts > self._newest_row):
            self._newest_row = ts

    @property
    def instruments(self) -> Mapping[str, Instrument]:
        return self._instruments

    def subscribe(self, callback: Callable[[object], None]) -> Callable[[], None]:
        self._subscribers.append(callback)

        def unsubscribe() -> None:
            with contextlib.suppress(ValueError):
                self._subscribers.remove(callback)

        return unsubscribe

    def _publish(self, event: object) -> None:
        for callback in list(self._subscribers):
            try:
                callback(event)
            except Exception as exc:  # noqa: BLE001 - one bad subscriber never breaks the link
                log_line("ERROR", f"subscriber failed on {type(event).__name__}", exc)

    def _expect(self, command: Command) -> list[list[str]] | None:
        """The facts the trader confirmed (this console's view right now, which is what its
        confirmation dialog compared against): the engine refuses if they changed."""
        if isinstance(command, CloseAll):
            return [position_facts(p) for p in self._positions.values()]
        if isinstance(command, (ClosePosition, SetTpSl)) and command.position_id is not None:
            snap = self._positions.get((command.symbol, command.pos_side.value))
            return [position_facts(snap)] if snap is not None else []
        return None

    def positions(self) -> list[PositionSnapshot]:
        return list(self._positions.values())

    def account(self) -> AccountSnapshot | None:
        return self._account

    def mark(self, symbol: str) -> Decimal | None:
        return self._marks.get(symbol)

    def links(self) -> dict[str, LinkState]:
        return dict(self._links)

    def estimate_close_pnl(self, symbol: str, pos_side: PosSide, contracts: Decimal) -> Decimal:
        """As the engine does (core/engine/book.py): pro rata of the life's unrealized PnL at the
        latest mark."""
        snap = self._positions.get((symbol, PosSide(pos_side).value))
        if snap is None or snap.contracts == 0:
            return Decimal(0)
        part = min(abs(contracts), snap.contracts)
        mark = self._marks.get(symbol)
        with localcontext(Context(prec=60)):
            upnl = (snap.unrealized_pnl if mark is None else
                    snap.side.sign * (mark - snap.entry_price) * snap.contracts * snap.contract_size)
            return upnl * part / snap.contracts

    @property
    def trading_state(self) -> TradingState:
        return self._risk.state

    @property
    def capabilities(self) -> VenueCapabilities:
        """What the engine's venue can do, from its snapshot (``FULL`` from an engine that does
        not say): the attached console hides and refuses keys as the in-process one does."""
        return self._capabilities

    def risk_status(self) -> RiskStatus:
        return self._risk

    def tp_sl(self, symbol: str, pos_side: PosSide) -> tuple[Decimal | None, Decimal | None]:
        return self._tpsl.get((symbol, PosSide(pos_side).value), (None, None))
