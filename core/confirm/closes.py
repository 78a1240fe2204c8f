"""Exchange confirmation of close rows: the journal's closes made to add up to the venue's own
per-life record (``core.events.CloseRecord``: OKX's positions-history item as it is; on Bybit a
life rebuilt by ``core.venue.bybit_lives`` from executions and per-order closed PnL). The rules
below are written in OKX's field names, which the record keeps; "positions-history" here means
``Venue.fetch_positions_history``, whatever the venue reads behind it.

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
* At stop, every close still waiting is written from the ledger (never dropped, never twice) and
  listed in a small file beside the journal (core/confirm/unconfirmed.py); the next start checks those
  lives against positions-history once and logs the outcome.

Batches: a burst of fills closes hundreds of lives a second, and a positions-history fetch per
close cannot keep up (each is several pages). So one fetch, of every page updated since the oldest
waiting close, serves every waiting life it can match; a life whose record lags waits alone.

This module is pure except ``CloseConfirmer``, which owns the rounds, the retries and the ordering
(rows of one life are written in the order they happened, because each one is a difference to the
ones before it).
"""
from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import heapq
import math
import time
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

from loguru import logger

from core.confirm import unconfirmed
from core.confirm.history_match import HistoryMatcher
from core.confirm.unconfirmed import UnconfirmedClose
from core.events import CloseKind, PositionHistoryRecord
from core.ids import life_seq
from core.model import CloseReason, CloseResult, PositionSide, RowSource
from core.money import ZERO, plain

CONFIRM_DELAYS = (0.0, 0.2, 0.5, 1.0, 2.0, 3.0)  # seconds before each positions-history attempt
# a record's uTime is at or after the close it includes (both exchange times): this much slack
HISTORY_SINCE_SLACK = timedelta(seconds=2)
MIN_ROUND_GAP_S = 0.2  # positions-history fetches at most this often (OKX: 10 requests / 2 s)
HURRY_GAP_S = 0.05  # ... and this often while stopping
MAX_BATCH = 2000  # lives per round
MAX_PENDING = 20000  # closes waiting; beyond, the oldest are written from the ledger at once

_REASON_BY_KIND = {
    CloseKind.LIQUIDATION: CloseReason.LIQUIDATION,
    CloseKind.PARTIAL_LIQUIDATION: CloseReason.LIQUIDATION,
    CloseKind.ADL_PARTIAL: CloseReason.ADL,
    CloseKind.ADL_FULL: CloseReason.ADL,
}


def reason_from_close_kind(kind: CloseKind | int) -> CloseReason:
    """The close reason a venue's close record implies (closes seen only in its history)."""
    return _REASON_BY_KIND.get(CloseKind.of(kind), CloseReason.EXTERNAL)


reason_from_close_type = reason_from_close_kind  # the name callers that speak of OKX's close type import


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


def decide(pending: PendingClose, totals: LifeTotals,
           record: PositionHistoryRecord | None) -> CloseResult | str:
    """The row to write for ``pending`` given its life's record now, or why it must wait.

    ``totals`` are the life's rows written so far (``pending`` is the next one). A string means
    the exchange has not caught up with this close yet: ask again later (the module policy)."""
    close = pending.close
    if record is None:
        return "no positions-history record for the life yet"
    target = totals.contracts_closed + close.contracts_closed
    if record.closed_contracts < target:
        return (f"positions-history shows {plain(record.closed_contracts)} contracts closed, "
                f"expected {plain(target)}")
    if record.closed_contracts > target and not close.is_full:
        return close  # a later close is already in the record: the later row absorbs
    if not close.is_full and pending.later_fills():
        return close  # the life changed since: its record no longer describes this row
    return confirm_close(close, totals, record)


def check_life(position_id: str, totals: LifeTotals,
               record: PositionHistoryRecord | None) -> tuple[bool, str]:
    """(differs, log line) for a fully closed life whose rows were written unconfirmed at a stop.

    The rows stay as they are (the journal is append-only); a difference is reported with the
    numbers, and ``perpdesk reconcile`` shows the same life."""
    if record is None:
        return True, (f"CLOSE DIFFERS {position_id}: written unconfirmed at the last stop and no "
                      "positions-history record is found for the life; perpdesk reconcile shows it")
    if record.closed_contracts > totals.contracts_closed:
        return False, (f"CLOSE CHECK {position_id}: the exchange closed "
                       f"{plain(record.closed_contracts)} contracts, the journal "
                       f"{plain(totals.contracts_closed)} so far; the life's next rows are "
                       "confirmed and absorb any difference")
    gross, fee, penalty, funding = exchange_numbers(totals, record)
    if record.closed_contracts == totals.contracts_closed and gross == fee == penalty == funding == 0:
        return False, (f"CLOSE CHECKED {position_id}: the rows written unconfirmed at the last stop "
                       f"match positions-history (realizedPnl {plain(record.realized_pnl)})")
    return True, (
        f"CLOSE DIFFERS {position_id}: rows written unconfirmed at the last stop net "
        f"{plain(totals.net_pnl)}, positions-history realizedPnl {plain(record.realized_pnl)} "
        f"(contracts closed {plain(totals.contracts_closed)} vs {plain(record.closed_contracts)}, "
        f"gross {plain(totals.gross_pnl)} vs {plain(record.pnl)}, fee {plain(totals.fee)} vs "
        f"{plain(-record.fee)}, liq_penalty {plain(totals.liq_penalty)} vs "
        f"{plain(-record.liq_penalty)}, funding {plain(totals.funding)} vs "
        f"{plain(record.funding_fee)}); the journal keeps its rows, perpdesk reconcile shows the life")


HistoryFetcher = Callable[[datetime], Awaitable[list[PositionHistoryRecord]]]


def _since(close: CloseResult) -> datetime:
    """Records a fetch must reach back to for ``close``: updated since it, and for a life that is
    not the first of its opening millisecond, the records of the lives before it too (they were
    closed at or after that millisecond), or the life would be matched by its rank among fewer."""
    return close.opened_at if life_seq(close.position_id) > 1 else close.closed_at


@dataclass(eq=False, slots=True)
class _Waiting:
    """The closes of one life waiting for confirmation (oldest first), and the retry state of the
    first of them: the others wait behind it, because each row is a difference to the ones before."""

    queue: deque[PendingClose]
    due: float  # monotonic time of the first one's next attempt
    attempts: int = 0  # attempts made for the first one


class CloseConfirmer:
    """Confirms ledger closes against positions-history in batches and hands out final rows.

    ``emit`` receives each final row exactly once (the engine journals, logs and publishes it).
    One worker task runs rounds: one positions-history fetch (every page since the oldest close of
    the batch) serves every waiting life it can match. Within a life rows are produced in order;
    lives are independent, so a life whose record lags only delays its own rows. The work stays
    bounded: at most ``max_batch`` lives per round, rounds at least ``min_gap`` s apart, a close
    not confirmed after the ``delays`` schedule is written from the ledger, and beyond
    ``max_pending`` waiting closes the oldest are written from the ledger at once.

    ``drain`` (stop) writes every close still waiting from the ledger and lists it in the
    ``sidecar`` file (core/confirm/unconfirmed.py); the next ``start`` checks those against
    positions-history and logs the outcome.
    """

    def __init__(self, fetch_history: HistoryFetcher, emit: Callable[[CloseResult], None], *,
                 delays: tuple[float, ...] = CONFIRM_DELAYS, enabled: bool = True,
                 max_lives: int = 5000, max_pending: int = MAX_PENDING,
                 max_batch: int = MAX_BATCH, min_gap: float = MIN_ROUND_GAP_S,
                 sidecar: Path | None = None) -> None:
        self._fetch = fetch_history
        self._emit = emit
        self._delays = delays or (0.0,)
        self.enabled = enabled
        self._waiting: OrderedDict[str, _Waiting] = OrderedDict()  # position_id -> its closes
        self._pending = 0  # closes in ``_waiting``
        self._totals: OrderedDict[str, LifeTotals] = OrderedDict()
        self._max_lives = max_lives
        self._max_pending = max_pending
        self._max_batch = max_batch
        self._min_gap = min_gap
        self._sidecar = sidecar
        self._unconfirmed: list[UnconfirmedClose] = []  # listed in the sidecar, not yet checked
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()  # set while no close is waiting (Engine.settle waits on it)
        self._idle.set()
        self._sleep_until = 0.0  # the worker sleeps until then (0: it is not sleeping)
        self._last_round = -math.inf
        self._hurry = False

    # ---- totals ---------------------------------------------------------------------------
    def totals(self, position_id: str) -> LifeTotals:
        return self._totals.get(position_id, LifeTotals())

    def seed(self, position_id: str, totals: LifeTotals) -> None:
        """Totals of rows already in the journal (restart), so new rows continue the differences."""
        self._totals[position_id] = totals
        self._trim()

    def _trim(self) -> None:
        """Forget the oldest lives' totals beyond ``max_lives``, never those of a waiting life."""
        excess = len(self._totals) - self._max_lives
        if excess <= 0:
            return
        drop: list[str] = []
        for pid in self._totals:  # oldest first; nearly always the very first ones
            if len(drop) == excess:
                break
            if pid not in self._waiting:
                drop.append(pid)
        for pid in drop:
            del self._totals[pid]

    # ---- lifecycle ------------------------------------------------------------------------
    def start(self) -> None:
        if self._task is None:
            if self._sidecar is not None:
                self._unconfirmed = unconfirmed.load(self._sidecar)
            self._task = asyncio.create_task(self._run(), name="close-confirmer")

    def submit(self, pending: PendingClose) -> None:
        now = time.monotonic()
        self._idle.clear()
        pid = pending.close.position_id
        waiting = self._waiting.get(pid)
        if waiting is None:
            self._waiting[pid] = _Waiting(deque([pending]), now + self._delays[0])
        else:
            waiting.queue.append(pending)
        self._pending += 1
        if self._pending > self._max_pending:
            self._overflow()
        if self._sleep_until > max(now, self._last_round + (self._min_gap if self.enabled else 0.0)):
            self._wake.set()  # the worker sleeps for a later retry: this one can go sooner

    @property
    def idle(self) -> bool:
        return not self._waiting

    async def wait_idle(self) -> None:
        """Return once every submitted close is written (at once when idle)."""
        await self._idle.wait()

    @property
    def pending(self) -> int:
        """Closes waiting for confirmation (not written yet)."""
        return self._pending

    async def drain(self, timeout: float) -> int:
        """Stop: confirm what the exchange confirms within ``timeout``, write the rest from the ledger.

        While draining, rounds run back to back (no retry delays). Every close still waiting then
        is written with the ledger's numbers (``source=ledger``), never dropped, and listed in the
        sidecar so the next start checks it against positions-history. Returns how many were.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        if self._waiting and self._task is not None and not self._task.done():
            self._hurry = True
            self._wake.set()
            while self._waiting and loop.time() < deadline and not self._task.done():
                await asyncio.sleep(0.02)
        await self.cancel()
        self._hurry = False
        return self.flush_from_ledger()

    def flush_from_ledger(self) -> int:
        """Write every waiting close now, in order, with the ledger's numbers; list them unconfirmed."""
        entries: list[UnconfirmedClose] = []
        for pid in list(self._waiting):
            waiting = self._waiting[pid]
            while waiting.queue:
                pending = waiting.queue[0]
                self._pop_write(pid, waiting, pending.close)
                entries.append(UnconfirmedClose.of(pending.close, pending.pos_side))
        if entries and self.enabled:
            logger.warning(f"CLOSE UNCONFIRMED {len(entries)} close rows written from the ledger at "
                           "stop (not yet confirmed by the exchange); they are checked against "
                           "positions-history at the next start")
            self._unconfirmed += entries
            self._save()
        return len(entries)

    async def cancel(self) -> None:
        """Stop the worker now; closes still waiting stay waiting (``flush_from_ledger`` writes them)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    # ---- the worker -----------------------------------------------------------------------
    async def _run(self) -> None:
        if self._unconfirmed:
            try:
                await self._check_previous()
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - the check is advisory; confirming goes on
                logger.exception("checking the close rows written unconfirmed at the last stop failed")
        loop = asyncio.get_running_loop()
        while True:
            now = time.monotonic()
            if not self._waiting:
                at = math.inf
            elif self._hurry:
                at = self._last_round + HURRY_GAP_S
            else:
                # the gap spaces positions-history fetches; with confirmation off a round fetches
                # nothing, so nothing spaces it (a 0.2 s gap held every close row that long)
                gap = self._min_gap if self.enabled else 0.0
                at = max(self._last_round + gap, min(w.due for w in self._waiting.values()))
            if at > now:
                self._sleep_until = at
                self._wake.clear()
                # call_later rather than wait_for: no extra task per sleep, and a cancel is
                # never swallowed by a timeout firing at the same moment
                timer = loop.call_later(at - now, self._wake.set) if at < math.inf else None
                try:
                    await self._wake.wait()
                finally:
                    if timer is not None:
                        timer.cancel()
                    self._sleep_until = 0.0
                continue
            try:
                await self._round()
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - a bug must not stop confirmation; rows stay waiting
                logger.exception("close confirmation round failed")

    async def _round(self) -> None:
        """One fetch, then every life of the batch as far as the records allow."""
        started = time.monotonic()
        self._last_round = started
        if len(self._waiting) <= self._max_batch:
            batch = list(self._waiting)
        else:
            batch = [pid for pid, _ in heapq.nsmallest(self._max_batch, self._waiting.items(),
                                                       key=lambda kv: kv[1].due)]
        if not self.enabled:
            for pid in batch:
                off = self._waiting[pid]
                while off.queue:
                    self._pop_write(pid, off, off.queue[0].close)
            return
        since = min(_since(self._waiting[pid].queue[0].close) for pid in batch) - HISTORY_SINCE_SLACK
        try:
            records = await self._fetch(since)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - VenueError or transport trouble: retry
            why = f"positions-history unavailable: {exc}"
            for pid in batch:
                failed = self._waiting.get(pid)
                if failed is not None and failed.due <= started:
                    self._missed(pid, failed, why, started, index=None)
            return
        index = HistoryMatcher(records)
        for pid in batch:
            waiting = self._waiting.get(pid)  # an overflow may have written it meanwhile
            if waiting is not None:
                self._settle(pid, waiting, index, started)

    def _settle(self, pid: str, waiting: _Waiting, index: HistoryMatcher, started: float) -> None:
        """Write the life's waiting rows in order while the records confirm (or settle) them."""
        while waiting.queue:
            pending = waiting.queue[0]
            close = pending.close
            try:
                record = index.match(close.symbol, pending.pos_side, close.side, close.opened_at,
                                     life_seq(pid), owner=pid)
                out = decide(pending, self.totals(pid), record)
            except Exception:  # noqa: BLE001 - a confirmation bug must not lose the row
                logger.exception(f"close confirmation failed for {pid}")
                out = close
            if isinstance(out, str):
                if waiting.due > started:
                    return  # not this close's attempt yet: the fetch was for other lives
                self._missed(pid, waiting, out, started, index)
                return
            if out.source is RowSource.EXCHANGE:
                logger.info(
                    f"CLOSE CONFIRMED {pid} from exchange: gross {plain(close.gross_pnl)} -> "
                    f"{plain(out.gross_pnl)}, fee {plain(close.fee)} -> {plain(out.fee)}, "
                    f"liq_penalty {plain(close.liq_penalty)} -> {plain(out.liq_penalty)}, funding "
                    f"{plain(close.funding)} -> {plain(out.funding)}")
            self._pop_write(pid, waiting, out)

    def _missed(self, pid: str, waiting: _Waiting, why: str, started: float,
                index: HistoryMatcher | None) -> None:
        """The first waiting close of a life was not confirmed by this attempt: retry it later, or
        after the last attempt write it from the ledger (and go on with the life's next close)."""
        waiting.attempts += 1
        if waiting.attempts < len(self._delays):
            waiting.due = started + self._delays[waiting.attempts]
            return
        logger.warning(f"CLOSE UNCONFIRMED {pid}: {why}; written from the ledger")
        self._pop_write(pid, waiting, waiting.queue[0].close)
        if index is not None and waiting.queue:
            self._settle(pid, waiting, index, started)

    def _overflow(self) -> None:
        """Backlog over ``max_pending``: the oldest lives' first closes go out from the ledger."""
        written = 0
        while self._pending > self._max_pending and self._waiting:
            pid, waiting = next(iter(self._waiting.items()))
            self._pop_write(pid, waiting, waiting.queue[0].close)
            written += 1
        logger.warning(f"CLOSE UNCONFIRMED backlog over {self._max_pending} closes: {written} "
                       "written from the ledger without waiting for the exchange")

    def _pop_write(self, pid: str, waiting: _Waiting, row: CloseResult) -> None:
        waiting.queue.popleft()
        self._pending -= 1
        waiting.attempts = 0
        waiting.due = time.monotonic() + self._delays[0]
        if not waiting.queue:
            del self._waiting[pid]
            if not self._waiting:
                self._idle.set()
        self._write(row)

    def _write(self, close: CloseResult) -> None:
        self._totals[close.position_id] = self.totals(close.position_id).add(close)
        self._totals.move_to_end(close.position_id)
        self._trim()
        try:
            self._emit(close)
        except Exception:  # noqa: BLE001 - the engine's emit reports its own failures
            logger.exception(f"close row for {close.position_id} could not be handed out")

    # ---- rows written unconfirmed at the previous stop -------------------------------------
    async def _check_previous(self) -> None:
        """Check the lives listed at the last stop against positions-history once; log each one."""
        entries = list(self._unconfirmed)
        since = min(e.opened if life_seq(e.position_id) > 1 else e.closed
                    for e in entries) - HISTORY_SINCE_SLACK
        try:
            records = await self._fetch(since)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - checked at the next start instead
            logger.warning(f"CLOSE CHECK positions-history unavailable ({exc}); {len(entries)} close "
                           "rows written unconfirmed at the last stop are checked at the next start")
            return
        index = HistoryMatcher(records)
        lives: OrderedDict[str, list[UnconfirmedClose]] = OrderedDict()
        for entry in entries:
            lives.setdefault(entry.position_id, []).append(entry)
        for pid, listed in lives.items():
            self._check_one(pid, listed, index)
        self._unconfirmed = [e for e in self._unconfirmed if e not in entries]
        self._save()

    def _check_one(self, pid: str, listed: list[UnconfirmedClose], index: HistoryMatcher) -> None:
        if pid in self._waiting:
            logger.info(f"CLOSE CHECK {pid}: more of its closes are being confirmed now; the "
                        "confirmed row absorbs any difference")
            return
        full = [e for e in listed if e.full]
        if not full:
            logger.info(f"CLOSE CHECK {pid}: {len(listed)} partial close rows written unconfirmed at "
                        "the last stop; the life's next confirmed row absorbs any difference")
            return
        entry = full[-1]
        try:
            record = index.match(entry.symbol, entry.pos_side, PositionSide(entry.side), entry.opened,
                                 life_seq(pid), owner=pid)
        except ValueError as exc:
            logger.warning(f"CLOSE CHECK {pid}: entry not usable ({exc}); perpdesk reconcile "
                           "compares the life")
            return
        differs, line = check_life(pid, self.totals(pid), record)
        (logger.warning if differs else logger.info)(line)

    def _save(self) -> None:
        if self._sidecar is None:
            return
        try:
            unconfirmed.save(self._sidecar, self._unconfirmed)
        except OSError as exc:
            logger.error(f"CLOSE CHECK cannot write {self._sidecar}: {exc.strerror or exc}; the rows "
                         "are in the journal, perpdesk reconcile compares them")
