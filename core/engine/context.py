"""What the engine's parts share, handed to each part by the coordinator.

Why an explicit context rather than the ``Engine``: a part that holds the whole engine can call
any of it, private methods included, and every part then depends on every other one through it.
A part gets this context (the exchange, the journal, the ledger, the clock and the coordinator's
few services: publish, notice, refuse, enqueue) plus the other parts it really uses, by name.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from core.accounting.ledger import Ledger
from core.engine.ports import Clock
from core.events import AccountSnapshot, CommandResult, EngineEvent, NoticeLevel
from core.journal.writer import Journal
from core.venue.base import Venue


@dataclass(frozen=True, slots=True, eq=False)
class EngineContext:
    venue: Venue
    journal: Journal
    ledger: Ledger
    clock: Clock  # wall-clock time (UTC) of the engine's decisions
    publish: Callable[[EngineEvent], None]  # to every subscriber (console, strategy, risk)
    notice: Callable[[NoticeLevel, str], None]  # one line for the trader, logged
    refuse: Callable[[str], CommandResult]  # a refused command: notice + ok=False
    enqueue: Callable[[object], None]  # a stateful event for the one consumer, in order
    check_journal: Callable[[], None]  # tell the trader once when the journal fails or recovers
    set_account: Callable[[AccountSnapshot], None]  # the latest balance the engine reports
    stopped: Callable[[], bool]  # the engine is stopping: a disconnect then is no news
    read_only: bool = False

    def clock_offset(self) -> float:
        """This computer's clock minus the exchange's (s); 0 for venues that do not measure it."""
        return float(self.venue.clock_offset_s)  # float ok: seconds, not money
