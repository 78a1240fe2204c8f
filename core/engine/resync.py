"""Resync: backfill what the streams missed from REST, then make the ledger match the exchange.

On start the ledger is rebuilt from the journal (replay.py), then everything since the journal's
last fill is backfilled from fills-history and bills, and positions the exchange holds are
adopted. After the private stream reconnects the same resync runs before the stream is trusted
again. A failed resync is retried (``due``).
"""
from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING

from loguru import logger

from core.accounting.ledger import LedgerPosition
from core.confirm.closes import reason_from_close_kind
from core.confirm.history_match import match_history
from core.engine.funding import BACKFILL_SLACK
from core.engine.ports import Key
from core.events import LinkState, NoticeLevel, PositionPush, StreamStatus
from core.ids import life_seq
from core.model import CloseReason, Fill, Origin, PositionSide
from core.money import ZERO, plain

if TYPE_CHECKING:
    from core.engine.book import Book
    from core.engine.context import EngineContext
    from core.engine.fills import FillPath
    from core.engine.funding import Funding
    from core.engine.inbound import Inbound
    from core.engine.ports import ResyncSchedule

LIFE_MATCH = timedelta(seconds=5)  # exchange cTime vs ledger opened_at: the same life
ALIGN_READS = 3  # positions/fills read pairs before a difference is taken as real

_ORIGIN_BY_REASON = {CloseReason.LIQUIDATION: Origin.LIQUIDATION, CloseReason.ADL: Origin.ADL,
                     CloseReason.TP: Origin.TP, CloseReason.SL: Origin.SL}


def _push_side(push: PositionPush) -> PositionSide:
    if push.pos_side in ("long", "short"):
        return PositionSide(push.pos_side)
    return PositionSide.LONG if push.contracts > 0 else PositionSide.SHORT


class Resync:
    """Backfill and alignment (``ResyncSchedule.due``: when a retry or a delayed resync runs)."""

    def __init__(self, ctx: EngineContext, book: Book, fills: FillPath, funding: Funding,
                 inbound: Inbound, schedule: ResyncSchedule) -> None:
        self._ctx = ctx
        self._book = book
        self._fills = fills
        self._funding = funding
        self._inbound = inbound
        self._schedule = schedule
        self.synced_connects = 0  # private-stream connections a resync has covered

    async def sync(self, reason: str) -> None:
        """Backfill fills and bills since the last known point, then align with the exchange."""
        e = self._ctx
        connects = self._inbound.private_connects
        started = self._ctx.clock()
        self._schedule.due = None  # this sync covers every resync asked for so far (re-armed on failure)
        e.publish(StreamStatus("sync", LinkState.RESYNCING, message=reason, ts=started))
        logger.info(f"RESYNC {reason}: backfilling from REST")
        positions = await e.venue.fetch_positions()
        since = self._backfill_since(positions)
        fills = await e.venue.fetch_fills(since) if since is not None else []
        bills = await e.venue.fetch_funding_bills(self._funding.since(since))
        n_fills, n_bills = self._funding.apply_merged(fills, bills)
        adopted = await self._align(started)
        self._funding.synced_at = started
        self.synced_connects = max(self.synced_connects, connects)
        self._inbound.disconnected_at = None
        try:
            account = await e.venue.fetch_balance()
            e.set_account(account)
            e.publish(account)
        except Exception as exc:  # noqa: BLE001
            logger.warning(f"balance after resync unavailable: {exc}")
        logger.info(f"RESYNC {reason} done: {n_fills} fills and {n_bills} funding bills backfilled, "
                    f"{adopted} positions aligned, {len(e.ledger.positions())} open")
        e.publish(StreamStatus("sync", LinkState.CONNECTED, message=reason, ts=self._ctx.clock()))

    def _backfill_since(self, positions: Iterable[PositionPush]) -> datetime | None:
        e = self._ctx
        cands: list[datetime] = []
        last = e.journal.last_fill_time()
        if last is not None:
            cands.append(last - BACKFILL_SLACK)
        if self._inbound.disconnected_at is not None:
            # measured on this computer's clock; fills carry the exchange's: convert, so a clock
            # running ahead cannot push the backfill start past fills made in the gap
            offset = timedelta(seconds=e.clock_offset())
            cands.append(self._inbound.disconnected_at - offset - BACKFILL_SLACK)
        for push in positions:
            if push.contracts == 0:
                continue
            if e.ledger.signed_contracts(push.symbol, push.pos_side) != push.contracts:
                if push.created_at is not None:
                    cands.append(push.created_at - BACKFILL_SLACK)
        return min(cands) if cands else None

    async def _align(self, started: datetime) -> int:
        """Make the ledger hold exactly what the exchange holds; returns how many lives changed."""
        e = self._ctx
        positions = await e.venue.fetch_positions()
        for _ in range(ALIGN_READS):
            if not self._mismatches(positions):
                break
            # Fills read after a positions read include every fill that read reflects; a second
            # read equal to the first means no fill landed in between, so what still differs is
            # real. (Adopting a position whose opening fill merely landed between two reads made
            # that fill count twice once its push arrived.)
            self._funding.apply_merged(await e.venue.fetch_fills(started - BACKFILL_SLACK), [])
            again = await e.venue.fetch_positions()
            steady = _sizes(again) == _sizes(positions)
            positions = again
            if steady:
                break
        # REST lists every open position: a push it no longer backs (the flat push was lost with
        # the connection) must not keep a closed position alive for close-all
        listed = {(pushed.symbol, pushed.pos_side): pushed for pushed in positions}
        for stale in [key for key in self._book.pushes if key not in listed]:
            del self._book.pushes[stale]
        self._book.pushes.update(listed)
        changed = 0
        for key, push in self._mismatches(positions):
            await self._fix(key, push)
            changed += 1
        for key in {(p.symbol, p.pos_side) for p in positions} | {
                (p.symbol, p.pos_side) for p in e.ledger.positions()}:
            self._book.mismatch_due.pop(key, None)
            self._book.position_changed(key)
        return changed

    def _mismatches(self, positions: list[PositionPush]) -> list[tuple[Key, PositionPush | None]]:
        ledger = self._ctx.ledger
        exch = {(p.symbol, p.pos_side): p for p in positions if p.contracts != 0}
        out: list[tuple[Key, PositionPush | None]] = []
        for key in sorted(set(exch) | {(p.symbol, p.pos_side) for p in ledger.positions()}):
            push = exch.get(key)
            pos = ledger.position(*key)
            mine = ledger.signed_contracts(*key)
            theirs = push.contracts if push is not None else ZERO
            stale = (pos is not None and push is not None and push.created_at is not None
                     and abs(push.created_at - pos.opened_at) > LIFE_MATCH)
            if mine != theirs or stale:
                out.append((key, push))
        return out

    async def _fix(self, key: Key, push: PositionPush | None) -> None:
        """Last resort: the fills could not explain the exchange's position."""
        e = self._ctx
        pos = e.ledger.position(*key)
        if pos is not None:
            side = _push_side(push) if push is not None else None
            same_life = (push is not None and side is pos.side and (
                push.created_at is None or abs(push.created_at - pos.opened_at) <= LIFE_MATCH))
            if not same_life:
                await self._close_from_history(pos)
                pos = None
        if push is None:
            return
        inst = e.venue.instruments[key[0]]
        side = _push_side(push)
        opened = pos.opened_at if pos is not None else (push.created_at or self._ctx.clock())
        entry = push.entry_price if push.entry_price is not None else self._book.mark_for(key[0])
        adopted = e.ledger.adopt(key[0], key[1], side, abs(push.contracts), inst.contract_size,
                                 entry, opened)
        if adopted.position_id not in self._fills.windows:
            self._fills.add_window(adopted)
        e.notice(NoticeLevel.WARNING,
                  f"adopted {key[0]} {side.value} {plain(abs(push.contracts))} contracts "
                  f"({plain(adopted.coins)} coins) @ {plain(entry)} from the exchange "
                  "(its opening fills are not available)")

    async def _close_from_history(self, pos: LedgerPosition) -> None:
        """The exchange no longer holds a life the ledger holds: close it from positions-history."""
        e = self._ctx
        records = await e.venue.fetch_positions_history(pos.opened_at - LIFE_MATCH)
        record = match_history(records, pos.symbol, pos.pos_side, pos.side, pos.opened_at,
                               seq=life_seq(pos.position_id))
        reason = reason_from_close_kind(record.close_type) if record else CloseReason.EXTERNAL
        price = (record.close_avg_price if record is not None and record.close_avg_price
                 else self._book.mark_for(pos.symbol, pos))
        ts = record.updated_at if record is not None else self._ctx.clock()
        synthetic = Fill(
            fill_id=f"resync-{pos.position_id}", order_id="", client_order_id="",
            symbol=pos.symbol, side=pos.side.closing_order_side, contracts=pos.contracts,
            contract_size=pos.contract_size, price=price, fee=ZERO, fee_ccy="USDT", ts=ts,
            reduce_only=True, origin=_ORIGIN_BY_REASON.get(reason, Origin.EXTERNAL),
            pos_side=pos.pos_side)
        before = e.ledger.position(pos.symbol, pos.pos_side)
        closes = [dataclasses.replace(c, fill_ids=()) for c in e.ledger.apply_fill(synthetic)]
        e.notice(NoticeLevel.WARNING,
                  f"{pos.symbol} {pos.side.value} {plain(pos.coins)} coins closed on the exchange "
                  f"while its fills were unavailable ({reason.value}); row built from "
                  "positions-history")
        self._fills.after_fill(synthetic, before, closes)


def _sizes(positions: list[PositionPush]) -> set[tuple[str, str, Decimal]]:
    """What two positions reads must agree on for the account to have held still between them."""
    return {(p.symbol, p.pos_side, p.contracts) for p in positions if p.contracts != 0}
