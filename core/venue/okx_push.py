"""OKX WS pushes -> venue events: routing by channel, coalescing bursts, skipping bad items.

Why apart from the connection (okx_stream) and the parsers (okx_parse): this is where OKX's push
semantics live. Whole-state channels are coalesced per burst; an item that cannot be read is
skipped alone and reported as a MalformedPush so the engine resyncs; a TP/SL fill whose algo is
not known yet waits for one REST lookup so it is not journaled under the wrong origin.

Why orders are held per instrument: the engine must apply an instrument's fills in exchange
order (a stop-loss that closed a life, then a fill that opened the next one). While a fill waits
for its algo look-up, every later orders push of the same instrument queues behind it and is
released in arrival order once it is out; other instruments are not held up.
"""
from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from loguru import logger

from core.events import MalformedPush
from core.model import Instrument
from core.venue import okx_parse as P
from core.venue.okx_candles import bar_of_channel, parse_candle
from core.venue.okx_history import OkxHistory
from core.venue.okx_markets import Markets
from core.venue.pass_end import at_pass_end

Sink = Callable[[object], None]
Item = dict[str, Any]

# Channels whose pushes are whole states, not changes (a mark price, an account balance, a
# position): of a burst read from the socket in one go, only the newest per instrument and leg is
# parsed, after the burst (a mark: the burst's first of its instrument at once, then the newest). OKX itself samples mark-price (every 200 ms at most) and a positions
# item carries the full position, so nothing is lost; orders (fills) are never coalesced, and
# the fills of a burst reach the engine before the position state that follows them.
ALGO_LOOKUP_MAX_S = 15.0  # an instrument's fills wait this long at most behind one algo look-up
LATEST_ONLY = frozenset({"mark-price", "account", "positions"})


def latest_key(channel: str, item: Mapping[str, Any]) -> str:
    """What a newer push of ``channel`` replaces.

    A position is one instId|posId: in net mode a cross and an isolated position on the same
    instrument both have posSide "net", so instId|posSide would let one hide the other; the
    instrument stays in the key because OKX's own documented push carries two instruments under
    one posId, and a posId alone would drop one of them. Without a posId the key is
    instId|mgnMode|posSide. A mark price is one instrument; the account is one account.
    """
    inst_id = str(item.get("instId") or "")
    if channel == "positions":
        pos_id = str(item.get("posId") or "")
        if pos_id:
            return f"{inst_id}|{pos_id}"
        return f'{inst_id}|{item.get("mgnMode") or ""}|{item.get("posSide") or ""}'
    return inst_id


class PushRouter:
    """Turns each push of the three streams into events for ``sink``."""

    def __init__(self, markets: Markets, history: OkxHistory, spawn: Callable[[Awaitable[None]], None]) -> None:
        self._markets = markets
        self._history = history
        self._spawn = spawn
        self.sink: Sink = lambda _: None
        self._latest: dict[tuple[str, str, str], Item] = {}
        self._latest_scheduled = False
        self._marked: set[tuple[str, str, str]] = set()  # instruments whose mark went through this burst
        self._held: dict[str, deque[Item]] = {}  # instId -> orders pushes behind an algo look-up
        self._handlers: dict[str, Callable[[Item], None]] = {
            "orders": self._order,
            "mark-price": self._mark,
            "positions": self._position,
            "account": self._account,
            "balance_and_position": self._balance_and_position,
            "funding-rate": self._funding_rate,
            "orders-algo": self._algo,
        }

    def malformed(self, stream: str, channel: str, reason: str) -> None:
        self.sink(MalformedPush(stream, channel, reason, datetime.now(UTC)))

    def on_push(self, msg: dict[str, Any], stream: str = "private") -> None:
        """Route one push by arg.channel; unknown instruments and channels are ignored.

        Each item is parsed on its own: an item missing a field or carrying a number OKX would
        never send is skipped with one log line (and a MalformedPush, so the engine resyncs), and
        the push's other items still go through.
        """
        channel = str(msg["arg"].get("channel") or "")
        if channel == "mark-price":  # the hottest channel first: no other test on its way
            for item in msg["data"]:
                if isinstance(item, dict):
                    self._mark_push(item, stream)
                else:
                    self.item(stream, channel, item)
            return
        if channel.startswith("candle"):
            self._candles(msg, stream, channel)
            return
        latest_only = channel in LATEST_ONLY
        for item in msg["data"]:
            if latest_only and isinstance(item, dict):
                if channel == "account" and not P.account_mentions(item, self._markets.settle_ccy):
                    continue  # an incremental push of other currencies: ours is unchanged
                self._latest[(channel, latest_key(channel, item), stream)] = item
                if not self._latest_scheduled:
                    self._latest_scheduled = True
                    at_pass_end(self._emit_latest)
            else:
                self.item(stream, channel, item)

    def _mark_push(self, item: Item, stream: str) -> None:
        """A mark: the first of its instrument in this burst goes through now, a later one
        waits for the burst's end (the newest wins, as for the other whole-state channels).

        Why not all at the burst's end: a mark read alone (nearly every one, at OKX's rates) then
        reaches the engine one event-loop pass sooner, and the book's revaluation of it runs in
        the same pass as the burst-end call instead of a pass after it."""
        key = ("mark-price", str(item.get("instId") or ""), stream)
        if not self._latest_scheduled:
            self._latest_scheduled = True
            at_pass_end(self._emit_latest)
        if key in self._marked:
            self._latest[key] = item
            return
        self._marked.add(key)
        inst = self._markets.by_id.get(key[1])
        if inst is None:
            return
        try:  # what item() would do, without its two calls and a dict look-up on every push
            mark = P.parse_mark_price(item, inst)
        except (KeyError, ValueError, TypeError, ArithmeticError, AttributeError) as exc:
            what = P.describe_error(exc)
            logger.warning(f"WS {stream} skipped a malformed mark-price push ({key[1] or '?'}): {what}")
            self.malformed(stream, "mark-price", what)
            return
        self.sink(mark)

    def _candles(self, msg: dict[str, Any], stream: str, channel: str) -> None:
        """A candle<bar> push: its rows are arrays and its instrument is in ``arg``, not in the
        rows. Each row is handed over in order (an open bar, then the same bar confirmed)."""
        inst = self._markets.by_id.get(str(msg["arg"].get("instId") or ""))
        bar = bar_of_channel(channel)
        if inst is None or bar is None:
            return
        for row in msg["data"]:
            try:
                candle = parse_candle(row, inst, bar)
            except (KeyError, ValueError, TypeError, ArithmeticError, AttributeError) as exc:
                logger.warning(f"WS {stream} skipped a malformed {channel} push ({inst.inst_id}): "
                               f"{P.describe_error(exc)}")
                continue  # public market data: nothing to resync, the next push replaces it
            self.sink(candle)

    def _emit_latest(self) -> None:
        """Parse and hand over the newest push of each key seen since the last call
        (one pass of the event loop: everything read from the socket in one go)."""
        self._latest_scheduled = False
        self._marked.clear()
        latest, self._latest = self._latest, {}
        for (channel, _, stream), item in latest.items():
            self.item(stream, channel, item)

    def item(self, stream: str, channel: str, item: Any) -> None:
        handler = self._handlers.get(channel)
        if handler is None:
            return
        try:
            handler(item)
        except (KeyError, ValueError, TypeError, ArithmeticError, AttributeError) as exc:
            what = P.describe_error(exc)
            ident = (item.get("tradeId") or item.get("ordId") or item.get("instId") or "?"
                     if isinstance(item, dict) else "?")
            logger.warning(f"WS {stream} skipped a malformed {channel} push ({ident}): {what}")
            self.malformed(stream, channel, what)

    def _inst(self, item: Item) -> Instrument | None:
        return self._markets.by_id.get(item.get("instId"))  # type: ignore[arg-type]

    def _order(self, item: Item) -> None:
        inst = self._inst(item)
        if inst is None:
            return
        held = self._held.get(inst.inst_id)
        if held is not None:  # an earlier fill of this instrument is still being classified
            held.append(item)
            return
        if P.needs_algo_lookup(item, self._history.algo_kinds):
            self._held[inst.inst_id] = deque([item])
            self._spawn(self._release_held(inst))
            return
        self._emit_order(item, inst)

    def _emit_order(self, item: Item, inst: Instrument) -> None:
        update, fill = P.parse_order_push(item, inst, self._history.algo_kinds)
        if fill is not None:
            self.sink(fill)
        if update is not None:
            self.sink(update)

    async def _release_held(self, inst: Instrument) -> None:
        """Emit ``inst``'s held orders pushes in arrival order, each TP/SL fill of unknown kind
        after one REST look-up; the hold ends when the queue is empty.

        A look-up that fails or outlasts ``ALGO_LOOKUP_MAX_S`` (REST down) leaves the kind unknown
        (the fill is journaled with the origin its order tells, never guessed to be TP or SL)
        rather than holding the instrument's later fills back for good: their order matters more
        than the label.
        """
        held = self._held[inst.inst_id]
        try:
            while held:
                item = held[0]
                if P.needs_algo_lookup(item, self._history.algo_kinds):
                    try:
                        await asyncio.wait_for(self._history.algo_kind(str(item["algoId"])),
                                               ALGO_LOOKUP_MAX_S)
                    except Exception as exc:  # noqa: BLE001 - the order of fills matters more
                        logger.warning(f"algo {item.get('algoId')} kind look-up failed: "
                                       f"{exc or type(exc).__name__}")
                held.popleft()
                self._emit_guarded(item, inst)
        finally:
            if self._held.get(inst.inst_id) is held:
                del self._held[inst.inst_id]
            for item in held:  # cancelled (the venue is closing): hand over what is left, in order
                self._emit_guarded(item, inst)

    def _emit_guarded(self, item: Item, inst: Instrument) -> None:
        """_emit_order off the push path: an unreadable item is reported, not lost in a task."""
        try:
            self._emit_order(item, inst)
        except (KeyError, ValueError, TypeError, ArithmeticError, AttributeError) as exc:
            logger.warning(f"WS private skipped a malformed orders push ({item.get('ordId')}): "
                           f"{P.describe_error(exc)}")
            self.malformed("private", "orders", P.describe_error(exc))

    def _mark(self, item: Item) -> None:
        if (inst := self._inst(item)) is not None:
            self.sink(P.parse_mark_price(item, inst))

    def _position(self, item: Item) -> None:
        if (inst := self._inst(item)) is not None:
            self.sink(P.parse_position(item, inst))

    def _account(self, item: Item) -> None:
        snapshot = P.parse_account(item, self._markets.settle_ccy)
        if snapshot is not None:
            self.sink(snapshot)

    def _balance_and_position(self, item: Item) -> None:
        for signal in P.parse_funding_signals(item, self._markets.by_id):
            self.sink(signal)

    def _funding_rate(self, item: Item) -> None:
        if (inst := self._inst(item)) is not None:
            self.sink(P.parse_funding_rate(item, inst))

    def _algo(self, item: Item) -> None:
        kind = P.algo_kind_of(item)
        if kind is not None and item.get("algoId"):
            self._history.remember_algo(str(item["algoId"]), kind)
