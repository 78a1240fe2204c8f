"""Which exchange positions-history record describes which position life: the one rule for it.

posId is not a life id (OKX and the simulator reuse it for every life in the same slot), so a life
is recognised by instrument, posSide, its opening time and its direction. Records whose cTime is
the life's opening millisecond are the lives opened in it, in the order they happened (records
oldest update first, as the venue returns them): the ``seq``-th of them is the life's whose id
carries that sequence, and no other life of that millisecond can take it. Only a life whose opening
time is approximate (an adopted position) takes the nearest record of its direction within the
tolerance, and never one of another millisecond's exact lives.

A record serves one life only: once a life (``owner``) took it, it is never handed to another.
The close confirmer asks life by life as closes arrive (``match``); reconcile places every exact
life first and the approximate ones after (``exact``, then ``near``), so that one missing record
cannot shift every following life onto its neighbour's.
"""
from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterable
from datetime import datetime, timedelta

from core.events import PositionHistoryRecord
from core.ids import ms_from_utc
from core.model import PositionSide

HISTORY_MATCH_TOLERANCE = timedelta(seconds=5)  # life opened_at vs positions-history cTime


class HistoryMatcher:
    """positions-history records by (symbol, posSide), sorted by opening time.

    Why an index: one fetch serves a whole batch of closes; a scan of every record per close would
    make a burst quadratic. A bisection finds the few records within the tolerance."""

    def __init__(self, records: Iterable[PositionHistoryRecord],
                 tolerance: timedelta = HISTORY_MATCH_TOLERANCE) -> None:
        self._tolerance = tolerance
        self._records = list(records)  # the listing order, for ``unmatched``
        legs: dict[tuple[str, str], list[PositionHistoryRecord]] = {}
        for rec in self._records:
            legs.setdefault((rec.symbol, rec.pos_side), []).append(rec)
        # stable: records of one millisecond updated in one millisecond keep the listing order
        self._legs = {k: sorted(v, key=lambda r: (ms_from_utc(r.created_at), r.updated_at))
                      for k, v in legs.items()}
        self._ms = {k: [ms_from_utc(r.created_at) for r in v] for k, v in self._legs.items()}
        self._times = {k: [r.created_at for r in v] for k, v in self._legs.items()}
        self._owners: dict[int, str] = {}  # id(record) -> the life that took it

    def match(self, symbol: str, pos_side: str, side: PositionSide, opened_at: datetime,
              seq: int = 1, owner: str | None = None) -> PositionHistoryRecord | None:
        """The record of one life, or None when the exchange does not list it (yet)."""
        leg = (symbol, pos_side)
        if leg not in self._legs:
            return None
        exact = self._exact_span(leg, ms_from_utc(opened_at))
        if exact:
            if seq > len(exact):
                return None  # the record of this life is not listed yet
            rec = exact[seq - 1]
            if _fits(rec, side):
                return rec if self._claim(rec, owner) else None
            # another direction: not a life of this millisecond after all (an approximate
            # opening time); the records of that millisecond belong to its own lives
        return self.near(symbol, pos_side, side, opened_at, owner)

    def exact(self, symbol: str, pos_side: str, side: PositionSide, opened_at: datetime,
              seq: int = 1, owner: str | None = None) -> PositionHistoryRecord | None:
        """The ``seq``-th record opened in the life's millisecond, if its direction fits and no
        other life took it."""
        exact = self._exact_span((symbol, pos_side), ms_from_utc(opened_at))
        if seq > len(exact):
            return None
        rec = exact[seq - 1]
        return rec if _fits(rec, side) and self._claim(rec, owner) else None

    def near(self, symbol: str, pos_side: str, side: PositionSide, opened_at: datetime,
             owner: str | None = None) -> PositionHistoryRecord | None:
        """The free record of the life's direction opened nearest to it within the tolerance,
        outside the life's own millisecond (those are the exact lives' records)."""
        leg = (symbol, pos_side)
        recs = self._legs.get(leg)
        if not recs:
            return None
        times = self._times[leg]
        lo = bisect_left(times, opened_at - self._tolerance)
        hi = bisect_right(times, opened_at + self._tolerance)
        opened_ms = ms_from_utc(opened_at)
        best: PositionHistoryRecord | None = None
        best_gap: timedelta | None = None
        for i in range(lo, hi):
            rec = recs[i]
            if self._ms[leg][i] == opened_ms or not _fits(rec, side) or not self._free(rec, owner):
                continue
            gap = abs(rec.created_at - opened_at)
            if best_gap is None or gap < best_gap:
                best, best_gap = rec, gap
        if best is not None:
            self._claim(best, owner)
        return best

    def unmatched(self) -> list[PositionHistoryRecord]:
        """Records no life took, in the order the venue listed them."""
        return [r for r in self._records if id(r) not in self._owners]

    def _exact_span(self, leg: tuple[str, str], opened_ms: int) -> list[PositionHistoryRecord]:
        times = self._ms.get(leg)
        if not times:
            return []
        return self._legs[leg][bisect_left(times, opened_ms):bisect_right(times, opened_ms)]

    def _free(self, rec: PositionHistoryRecord, owner: str | None) -> bool:
        taken = self._owners.get(id(rec))
        return taken is None or taken == owner

    def _claim(self, rec: PositionHistoryRecord, owner: str | None) -> bool:
        """Take ``rec`` for ``owner`` (None: a one-off look-up, nothing is kept); False when
        another life holds it."""
        if owner is None:
            return True
        return self._owners.setdefault(id(rec), owner) == owner


def _fits(rec: PositionHistoryRecord, side: PositionSide) -> bool:
    return not rec.direction or rec.direction == side.value


def match_history(records: Iterable[PositionHistoryRecord], symbol: str, pos_side: str,
                  side: PositionSide, opened_at: datetime,
                  tolerance: timedelta = HISTORY_MATCH_TOLERANCE,
                  seq: int = 1) -> PositionHistoryRecord | None:
    """One life's record among ``records`` (a single look-up: nothing is claimed)."""
    return HistoryMatcher(records, tolerance).match(symbol, pos_side, side, opened_at, seq)
