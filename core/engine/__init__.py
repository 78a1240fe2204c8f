"""The engine: one coordinator between the exchange, the ledger, the journal and the console.

Module map (the coordinator builds one helper per part and hands each an ``EngineContext`` plus
the other parts it uses, by name; no part holds the ``Engine``):

- ``coordinator``: ``Engine`` — lifecycle, the one event queue and its consumer, publishing,
  the timer, and the public API the console, runner and strategies use.
- ``context``: ``EngineContext`` — the venue, journal, ledger, clock and the coordinator's
  services (publish, notice, refuse, enqueue) the parts share.
- ``ports``: shared shapes (the clock, the resync request and schedule; the exchange protocol is
  ``core.venue.base.Venue``).
- ``inbound``: the venue's sink (stateless pushes inline, stateful ones queued), link states.
- ``commands`` + ``checks``: commands after the pre-trade check chain (where risk limits go);
  ``validate``: sizes and prices checked once, before the chain.
- ``fills``: the one fill path (journal -> ledger -> close confirmer), live, backfilled, replayed.
- ``book``: marks, position pushes, revaluing and publishing position lives.
- ``funding``: settlement times, funding bills and their attribution to position lives.
- ``timer``: periodic chores (journal state, snapshots, due resyncs, funding settlements).
- ``resync``: REST backfill and alignment with the exchange (start, reconnect, mismatch).
- ``replay``: rebuilding open lives from the journal at start, through the fill path.
- ``timeline``: the one time-ordered merge of fills and funding.
"""
from core.engine.checks import CheckChain, PreTradeCheck
from core.engine.coordinator import Engine
from core.engine.fills import LifeWindow
from core.engine.ports import Subscriber

__all__ = ["CheckChain", "Engine", "LifeWindow", "PreTradeCheck", "Subscriber"]
