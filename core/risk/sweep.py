"""What a halt and the kill switch do at the exchange: cancel resting orders and algos, close
positions, and re-read the exchange to see what is still there.

Why apart from the control: these are the exchange-side steps, each reading the exchange's own
view (the engine keeps no order book, and an order or algo placed by another app counts too);
the control decides when to run them. One failed cancel or close is logged and the others go on:
the verification re-read says what is left.
"""
from __future__ import annotations

import asyncio

from loguru import logger

from core.model import Origin
from core.money import plain
from core.venue.base import RestingOrder, Venue, VenueError, VenueErrorKind


async def cancel_orders(venue: Venue, orders: list[RestingOrder]) -> None:
    results = await asyncio.gather(*(venue.cancel_order(o.symbol, o.order_id) for o in orders),
                                   return_exceptions=True)
    for order, result in zip(orders, results, strict=True):
        if isinstance(result, BaseException):
            logger.warning(f"cancel of {order.symbol} order {order.order_id} failed: {result}")


async def cancel_entries(venue: Venue) -> int:
    """Cancel the resting orders that could open or grow a position (not reduce-only ones)."""
    orders = [o for o in await venue.fetch_open_orders() if not o.reduce_only]
    await cancel_orders(venue, orders)
    return len(orders)


async def close_all(venue: Venue) -> list[str]:
    """Close every exchange position (reduce-only market, sized by the exchange); what was closed."""
    positions = [p for p in await venue.fetch_positions() if p.contracts != 0]
    results = await asyncio.gather(
        *(venue.close_position(p.symbol, p.pos_side, None, Origin.CONSOLE) for p in positions),
        return_exceptions=True)
    closed = []
    for pos, result in zip(positions, results, strict=True):
        if isinstance(result, VenueError) and result.kind is VenueErrorKind.NOT_FOUND:
            continue  # it closed meanwhile
        if isinstance(result, BaseException):
            logger.error(f"closing {pos.symbol} {pos.pos_side} failed: {result}")
            continue
        closed.append(f"{pos.symbol} {pos.pos_side} {plain(pos.contracts)}")
    return closed


async def sweep(venue: Venue) -> None:
    """Everything off the exchange: orders, trigger orders (TP/SL, stops), then positions."""
    orders, triggers = await asyncio.gather(venue.fetch_open_orders(), venue.fetch_open_triggers())
    await cancel_orders(venue, orders)
    if triggers:
        await venue.cancel_triggers(triggers)
    await close_all(venue)


async def leftovers(venue: Venue) -> list[str]:
    """What the exchange still shows: open orders, live trigger orders, open positions (one phrase each)."""
    orders, algos, positions = await asyncio.gather(
        venue.fetch_open_orders(), venue.fetch_open_triggers(), venue.fetch_positions())
    return ([f"order {o.order_id} ({o.symbol})" for o in orders]
            + [f"trigger order {a.order_id} ({a.symbol})" for a in algos]
            + [f"position {p.symbol} {p.pos_side} {plain(p.contracts)}" for p in positions
               if p.contracts != 0])
