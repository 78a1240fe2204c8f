"""Exchange confirmation of close rows: the journal's closes made to add up to OKX's realizedPnl.

Why: the ledger computes every close from fills, but the exchange is the authority on what a
position life really realized (its rounding of the average entry, fees we never saw as fills,
funding bills that arrived late, the liquidation penalty that is not a fill at all). OKX's
positions-history keeps, per position life, cumulative totals (``pnl``, ``fee``, ``fundingFee``,
``liqPenalty``, ``closeTotalPos``) with ``realizedPnl = pnl + fee + fundingFee + liqPenalty``.

Policy (one row per close, written once, never rewritten — the journal is append-only):

* Every close row is confirmed against the positions-history record of its life before it is
  written. When the record's ``closeTotalPos`` equals the contracts closed by the rows written so
  far plus this one, the record describes the life exactly up to this close, and the row's numbers
  become the record's totals minus the totals of the rows already written:
  ``gross = pnl - Σgross``, ``fee = -fee - Σfee``, ``liq_penalty = -liqPenalty - Σpenalty``,
  ``funding = fundingFee - Σfunding``. If those equal the ledger's numbers the row stays
  ``source=ledger``; otherwise it carries the exchange's numbers and ``source=exchange``.
* A partial close whose life has seen another fill since (an increase adds an opening fee to the
  record) or whose record already includes a later close is written with the ledger's numbers: the
  record no longer describes this row alone. A later row of the same life absorbs any difference.
* The full close (``size_after == 0``) is always confirmed, so over a life the rows' ``net_pnl``
  add up to the record's ``realizedPnl`` with exact Decimal equality.
* If the exchange cannot be reached or has not caught up after the retries, the ledger row is
  written (and logged); ``perpdesk reconcile`` then shows the life if it differs.

This module is pure except ``CloseConfirmer``, which owns the retry loop and the ordering (rows of
one life are written in the order they happened, because each one is a difference to the ones
before it).
"""
from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from loguru import logger

from core.events import PositionHistoryRecord
from core.model import CloseReason, CloseResult, PositionSide, RowSource
from core.money import ZERO, plain

HISTORY_MATCH_TOLERANCE = timedelta(seconds=5)  # life opened_at vs positions-history cTime
CONFIRM_DELAYS = (0.0, 0.2, 0.5, 1.0, 2.0, 3.0)  # seconds before each positions-history attempt

_REASON_BY_CLOSE_TYPE = {
    3: CloseReason.LIQUIDATION,
    4: CloseReason.LIQUIDATION,
    5: CloseReason.ADL,
    6: CloseReason.ADL,
}


def reason_from_close_type(close_type: int) -> CloseReason:
    """The close reason OKX's positions-history ``type`` implies (closes seen only in history)."""
    return _REASON_BY_CLOSE_TYPE.get(close_type, CloseReason.EXTERNAL)


@dataclass(frozen=True, slots=True)
class LifeTotals:
    """Sums of the close rows already written for one position life (perpdesk signs)."""

    gross_pnl: Decimal = ZERO
    fee: Decimal = ZERO
    liq_penalty: Decimal = ZERO
    funding: Decimal = ZERO
    contracts_closed: Decimal = ZERO
    rows: int = 0

    def add(self, close: CloseResult) -> LifeTotals:
        return LifeTotals(
            gross_pnl=self.gross_pnl + close.gross_pnl, fee=self.fee + close.fee,
            liq_penalty=self.liq_penalty + close.liq_penalty, funding=self.funding + close.funding,
            contracts_closed=self.contracts_closed + close.contracts_closed, rows=self.rows + 1,
        )

    @property
    def net_pnl(self) -> Decimal:
        return self.gross_pnl - self.fee - self.liq_penalty + self.funding

    @staticmethod
    def of_rows(rows: Iterable[CloseResult]) -> LifeTotals:
        totals = LifeTotals()
        for row in rows:
            totals = totals.add(row)
        return totals


def match_history(records: Iterable[PositionHistoryRecord], symbol: str, pos_side: str,
                  side: PositionSide, opened_at: datetime,
                  tolerance: timedelta = HISTORY_MATCH_TOLERANCE) -> PositionHistoryRecord | None:
    """The positions-history record of the life opened at ``opened_at`` (nearest cTime wins).

    posId is not a life id (OKX and the simulator reuse it for every life in the same slot), so the
    life is recognised by instrument, posSide, direction and its opening time.
    """
    best: PositionHistoryRecord | None = None
    best_gap: timedelta | None = None
    for rec in records:
        if rec.symbol != symbol or rec.pos_side != pos_side:
            continue
        if rec.direction and rec.direction != side.value:
            continue
        gap = abs(rec.created_at - opened_at)
        if gap <= tolerance and (best_gap is None or gap < best_gap
                                 or (gap == best_gap and best is not None
                                     and rec.updated_at > best.updated_at)):
            best, best_gap = rec, gap
    return best


def exchange_numbers(totals: LifeTotals, record: PositionHistoryRecord
                     ) -> tuple[Decimal, Decimal, Decimal, Decimal]:
    """(gross, fee, liq_penalty, funding) the next row must carry so the life's rows equal the record.

    The record uses OKX signs (fee and liqPenalty negative when paid); rows use perpdesk's costs.
    """
    return (record.pnl - totals.gross_pnl, -record.fee - totals.fee,
            -record.liq_penalty - totals.liq_penalty, record.funding_fee - totals.funding)


def confirm_close(close: CloseResult, totals: LifeTotals,
                  record: PositionHistoryRecord) -> CloseResult:
    """``close`` with the exchange's numbers where they differ (source exchange), else unchanged.

    ``record`` must describe the life exactly through this close (see the module policy).
    """
    gross, fee, penalty, funding = exchange_numbers(totals, record)
    if (gross, fee, penalty, funding) == (close.gross_pnl, close.fee, close.liq_penalty,
                                          close.funding):
        return close
    return dataclasses.replace(close, gross_pnl=gross, fee=fee, liq_penalty=penalty,
                               funding=funding, source=RowSource.EXCHANGE)


@dataclass(frozen=True, slots=True)
class PendingClose:
    """A ledger close waiting for confirmation. ``later_fills`` tells whether the life has taken
    another fill since this close (then a partial row cannot be matched to the cumulative record)."""

    close: CloseResult
    pos_side: str
    later_fills: Callable[[], bool]


HistoryFetcher = Callable[[datetime], Awaitable[list[PositionHistoryRecord]]]


class CloseConfirmer:
    """Confirms ledger closes against positions-history, in order, and hands out final rows.

    ``emit`` receives each final row exactly once (the engine journals, logs and publishes it).
    One worker task: rows of a life are differences to the rows before them, so they must be
    produced in order; closes are rare enough that a sequential worker is never the bottleneck.
    """

    def __init__(self, fetch_history: HistoryFetcher, emit: Callable[[CloseResult], None], *,
                 delays: tuple[float, ...] = CONFIRM_DELAYS, enabled: bool = True,
                 max_lives: int = 5000) -> None:
        self._fetch = fetch_history
        self._emit = emit
        self._delays = delays
        self.enabled = enabled
        self._queue: asyncio.Queue[PendingClose] = asyncio.Queue()
        self._totals: OrderedDict[str, LifeTotals] = OrderedDict()
        self._max_lives = max_lives
        self._task: asyncio.Task[None] | None = None
        self._busy = False
        self._idle = asyncio.Event()  # set while nothing is queued or being confirmed
        self._idle.set()

    # ---- totals ---------------------------------------------------------------------------
    def totals(self, position_id: str) -> LifeTotals:
        return self._totals.get(position_id, LifeTotals())

    def seed(self, position_id: str, totals: LifeTotals) -> None:
        """Totals of rows already in the journal (restart), so new rows continue the differences."""
        self._totals[position_id] = totals
        self._trim()

    def _trim(self) -> None:
        while len(self._totals) > self._max_lives:
            self._totals.popitem(last=False)

    # ---- lifecycle ------------------------------------------------------------------------
    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="close-confirmer")

    def submit(self, pending: PendingClose) -> None:
        self._idle.clear()
        self._queue.put_nowait(pending)

    @property
    def idle(self) -> bool:
        return self._queue.empty() and not self._busy

    async def wait_idle(self) -> None:
        """Return once every submitted close is written (at once when idle)."""
        await self._idle.wait()

    async def drain(self, timeout: float) -> None:
        """Wait until every submitted close is written, then stop the worker.

        Closes still unconfirmed after ``timeout`` are NOT written from the ledger: their fills are
        in the journal, so the next start rebuilds them from those fills and confirms them then,
        instead of leaving a row the exchange never confirmed.
        """
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.wait_idle(), timeout)
        await self.cancel()
        left = self._queue.qsize()
        while not self._queue.empty():
            self._queue.get_nowait()
        self._idle.set()
        if left:
            logger.warning(f"CLOSE UNCONFIRMED {left} close rows left at stop; they are rebuilt "
                           "from the journal's fills and confirmed at the next start")

    async def cancel(self) -> None:
        """Stop the worker now; nothing in flight is written."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            pending = await self._queue.get()
            self._busy = True
            try:
                self._write(await self._confirm(pending))
            except asyncio.CancelledError:
                self._queue.put_nowait(pending)  # counted as left over by drain()
                raise
            except Exception:  # noqa: BLE001 - a confirmation bug must not lose the row
                logger.exception(f"close confirmation failed for {pending.close.position_id}")
                self._write(pending.close)
            finally:
                self._busy = False
                if self._queue.empty():
                    self._idle.set()

    def _write(self, close: CloseResult) -> None:
        self._totals[close.position_id] = self.totals(close.position_id).add(close)
        self._totals.move_to_end(close.position_id)
        self._trim()
        self._emit(close)

    async def _confirm(self, pending: PendingClose) -> CloseResult:
        """The row to write for ``pending``: confirmed when the exchange's record allows it."""
        close = pending.close
        if not self.enabled:
            return close
        totals = self.totals(close.position_id)
        target = totals.contracts_closed + close.contracts_closed
        why = "no positions-history record"
        for delay in self._delays:
            if delay:
                await asyncio.sleep(delay)
            try:
                records = await self._fetch(close.opened_at - HISTORY_MATCH_TOLERANCE)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - VenueError or transport trouble: retry
                why = f"positions-history unavailable: {exc}"
                continue
            record = match_history(records, close.symbol, pending.pos_side, close.side,
                                   close.opened_at)
            if record is None:
                why = "no positions-history record for the life yet"
                continue
            if record.closed_contracts < target:
                why = (f"positions-history shows {plain(record.closed_contracts)} contracts closed, "
                       f"expected {plain(target)}")
                continue
            if record.closed_contracts > target and not close.is_full:
                return close  # a later close is already in the record: the later row absorbs
            if not close.is_full and pending.later_fills():
                return close  # the life changed since: its record no longer describes this row
            confirmed = confirm_close(close, totals, record)
            if confirmed.source is RowSource.EXCHANGE:
                logger.info(
                    f"CLOSE CONFIRMED {close.position_id} from exchange: gross "
                    f"{plain(close.gross_pnl)} -> {plain(confirmed.gross_pnl)}, fee "
                    f"{plain(close.fee)} -> {plain(confirmed.fee)}, liq_penalty "
                    f"{plain(close.liq_penalty)} -> {plain(confirmed.liq_penalty)}, funding "
                    f"{plain(close.funding)} -> {plain(confirmed.funding)}")
            return confirmed
        logger.warning(f"CLOSE UNCONFIRMED {close.position_id}: {why}; written from the ledger")
        return close
