"""Today's net PnL as the loss limit and the drawdown limit see it, and the day's peak of it.

Why its own running total rather than re-reading the journal: the monitor evaluates it several
times a second; the journal is read once at start (today's close rows) and every close published
afterwards is added once, by its journal key, so a close seen both ways counts once.

Today's net = the net PnL of today's close rows (their funding included) + for each open life, its
unrealized PnL at mark plus the funding it has received or paid and minus the fees it has paid
since it opened (what its close rows will carry). "Today" starts at ``day_start`` UTC.
"""
from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from decimal import Decimal

from core.model import CloseResult
from core.money import ZERO


def day_start_at(ts: datetime, start: time) -> datetime:
    """The start of the risk day holding ``ts``: the latest ``start`` (UTC) at or before it."""
    ts = ts.astimezone(UTC)
    boundary = datetime.combine(ts.date(), start, UTC)
    return boundary if boundary <= ts else boundary - timedelta(days=1)


class DayPnl:
    """Realized net since the day start (closes, each once) and the day's peak of the total."""

    def __init__(self, start: time) -> None:
        self.start = start
        self.since: datetime | None = None
        self.realized = ZERO
        self.peak = ZERO
        self._keys: set[str] = set()

    def roll(self, ts: datetime) -> bool:
        """Start a new day when ``ts`` is past the current one; True when it did."""
        boundary = day_start_at(ts, self.start)
        if boundary == self.since:
            return False
        self.since = boundary
        self.realized = ZERO
        self.peak = ZERO
        self._keys = set()
        return True

    def add_close(self, key: str, close: CloseResult) -> bool:
        """Count ``close`` once if it closed today; False when it is old or already counted."""
        if self.since is None or close.closed_at < self.since or key in self._keys:
            return False
        self._keys.add(key)
        self.realized += close.net_pnl
        return True

    def total(self, open_net: Decimal) -> Decimal:
        """Today's net with ``open_net`` (the open lives' part); moves the peak up."""
        net = self.realized + open_net
        if net > self.peak:
            self.peak = net
        return net
