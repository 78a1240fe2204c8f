"""The engine's status row in the store, upserted about once a second, with a NOTIFY.

Why one row per engine, written through ``perpdesk.put_status``: the engine's role may only
insert, so the upsert is a function owned by the schema's owner (SECURITY DEFINER) that also
notifies listeners (``perpdesk_status``); the Accounts screen and `perpdesk accounts` read the rows.
The heartbeat column is the engine's clock at the write: a reader shows a row whose heartbeat
is old as stale, whatever its numbers say.

Today's fees, funding and net are the journal's own cash-basis day (UTC), as `perpdesk report`
computes them: fees of today's fills, gross and liquidation penalty of today's closes, today's
funding cash flows, net = gross - fees - liq + funding. Seeded from the journal at start, then
counted from the engine's events, each row once by its journal key.
"""
from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, Protocol

from loguru import logger

from core.events import AccountSnapshot, LinkState
from core.journal.history import DayHistory
from core.model import CloseResult, Fill, FundingPayment, PositionSnapshot
from core.money import ZERO
from core.store.connect import SCHEMA, connect, describe
from core.store.errors import StoreError
from core.store.migrations import STATUS_COLUMNS
from core.store.rows import Scope
from core.store.shipper import StoreState

STATUS_INTERVAL_S = 1.0
STOPPED = "stopped"  # the risk_state of an engine's last row when it stopped cleanly


class StatusEngine(Protocol):
    """What the status row reads from core.engine.Engine."""

    def subscribe(self, callback: Callable[[Any], None]) -> Callable[[], None]: ...
    def account(self) -> AccountSnapshot | None: ...
    def positions(self) -> list[PositionSnapshot]: ...
    def links(self) -> dict[str, LinkState]: ...
    async def today_history(self, day: date | None = None) -> DayHistory: ...


@dataclass
class DayTotals:
    """One UTC day's fees, funding, gross and liquidation penalties, each journal row once."""

    day: date
    fees: Decimal = ZERO
    funding: Decimal = ZERO
    gross: Decimal = ZERO
    liq: Decimal = ZERO
    _keys: set[str] = field(default_factory=set)

    @property
    def net(self) -> Decimal:
        return self.gross - self.fees - self.liq + self.funding

    def add_fill(self, fill: Fill) -> None:
        if fill.ts.astimezone(UTC).date() == self.day and self._once(f"f{fill.fill_id}"):
            self.fees += fill.fee

    def add_close(self, close: CloseResult) -> None:
        if close.closed_at.astimezone(UTC).date() == self.day and self._once(f"c{close.close_key}"):
            self.gross += close.gross_pnl
            self.liq += close.liq_penalty

    def add_funding(self, payment: FundingPayment) -> None:
        if payment.ts.astimezone(UTC).date() == self.day and self._once(f"b{payment.bill_id}"):
            self.funding += payment.amount

    def _once(self, key: str) -> bool:
        if key in self._keys:
            return False
        self._keys.add(key)
        return True


class StatusPublisher:
    """Upserts this engine's status row every ``interval`` seconds (own connection, own task)."""

    def __init__(self, engine: StatusEngine, url: str, scope: Scope,
                 store: Callable[[], StoreState], *, risk: Callable[[], tuple[str, str]] | None = None,
                 interval: float = STATUS_INTERVAL_S) -> None:
        self.engine = engine
        self.url = url
        self.scope = scope
        self.store = store
        self.risk = risk or (lambda: ("", ""))
        self.interval = interval
        self.totals = DayTotals(datetime.now(UTC).date())
        self._unsubscribe: Callable[[], None] | None = None
        self._conn: Any = None
        self._task: asyncio.Task[None] | None = None
        self._error = ""
        self.written = 0
        self.stopped = False  # the engine is stopping: the last row's state is "stopped"

    async def start(self) -> None:
        self._unsubscribe = self.engine.subscribe(self._on_event)
        await self._seed(self.totals.day)
        self._task = asyncio.create_task(self._run(), name="store-status")

    async def stop(self) -> None:
        """Stop writing; a last row says "stopped", so readers show a stop, not a stale engine."""
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None
            self.stopped = True
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.publish(), 2.0)
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(conn.close(), 2.0)

    async def _seed(self, day: date) -> None:
        try:
            history = await self.engine.today_history(day)
        except Exception as exc:  # noqa: BLE001 - the status row goes on with what it counts
            logger.warning(f"store status: today's journal not read ({exc})")
            return
        for fill in history.fills:
            self.totals.add_fill(fill)
        for jc in history.closes:
            self.totals.add_close(jc.close)
        for payment in history.funding:
            self.totals.add_funding(payment)

    def _on_event(self, event: object) -> None:
        if isinstance(event, Fill):
            self.totals.add_fill(event)
        elif isinstance(event, CloseResult):
            self.totals.add_close(event)
        elif isinstance(event, FundingPayment):
            self.totals.add_funding(event)

    async def _run(self) -> None:
        while True:
            today = datetime.now(UTC).date()
            if today != self.totals.day:
                self.totals = DayTotals(today)
                await self._seed(today)
            try:
                await self.publish()
                if self._error:
                    logger.info("store status: writing again")
                self._error = ""
            except Exception as exc:  # noqa: BLE001 - never stops the engine; retried next second
                message = exc.message if isinstance(exc, StoreError) else describe(exc)
                if message != self._error:
                    logger.warning(f"store status not written: {message}")
                self._error = message
                conn, self._conn = self._conn, None
                if conn is not None:
                    with contextlib.suppress(Exception):
                        conn.terminate()
            await asyncio.sleep(self.interval)

    def row(self) -> tuple[object, ...]:
        """The status values in ``STATUS_COLUMNS`` order (after the engine's name)."""
        account = self.engine.account()
        positions = self.engine.positions()
        upnl = sum((p.unrealized_pnl for p in positions), ZERO)
        strategy, risk_state = self.risk()
        if self.stopped:
            risk_state = STOPPED
        links = ",".join(f"{k}:{v.value}" for k, v in sorted(self.engine.links().items()))
        store = self.store()
        t = self.totals
        return (self.scope.venue, self.scope.mode, self.scope.account,
                account.equity if account else None, upnl, t.net, t.fees, t.funding,
                len(positions), strategy, risk_state, links, store.rows_behind,
                Decimal(f"{store.seconds_behind:.3f}"), datetime.now(UTC))

    async def publish(self) -> None:
        if self._conn is None or self._conn.is_closed():
            self._conn = await connect(self.url, what=f"store status of {self.scope.engine}",
                                       application_name=f"perpdesk status {self.scope.engine}")
        args = ", ".join(f"${i}" for i in range(1, len(STATUS_COLUMNS) + 2))
        await self._conn.execute(f"SELECT {SCHEMA}.put_status({args})", self.scope.engine,
                                 *self.row(), timeout=5.0)
        self.written += 1
