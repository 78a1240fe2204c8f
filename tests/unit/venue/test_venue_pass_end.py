"""The end of a loop pass (core/venue/pass_end.py): the parts that coalesce a burst (the push
router, the book, the risk monitor) share one scheduled callback, in the order they asked, and a
part asked for while it runs still runs in that pass; what is scheduled on the loop meanwhile
waits for the next pass (the console shares the loop)."""
from __future__ import annotations

import asyncio

from core.venue.pass_end import at_pass_end


async def test_one_handle_runs_every_part_in_the_order_asked() -> None:
    loop = asyncio.get_running_loop()
    ran: list[str] = []
    scheduled = 0
    call_soon = loop.call_soon

    def counting(*args: object, **kwargs: object) -> asyncio.Handle:
        nonlocal scheduled
        scheduled += 1
        return call_soon(*args, **kwargs)  # type: ignore[arg-type]

    loop.call_soon = counting  # type: ignore[method-assign]
    try:
        at_pass_end(lambda: ran.append("router"))
        at_pass_end(lambda: ran.append("book"))
        at_pass_end(lambda: ran.append("risk"))
    finally:
        del loop.call_soon  # type: ignore[method-assign]
    assert scheduled == 1
    assert ran == []  # not before the pass ends
    await asyncio.sleep(0)
    assert ran == ["router", "book", "risk"]


async def test_a_part_asked_for_while_the_pass_ends_runs_in_it_after_the_others() -> None:
    ran: list[str] = []

    def router() -> None:
        ran.append("router")
        at_pass_end(lambda: ran.append("book, for the router's marks"))

    at_pass_end(router)
    at_pass_end(lambda: ran.append("risk"))
    await asyncio.sleep(0)
    assert ran == ["router", "risk", "book, for the router's marks"]


async def test_what_the_loop_schedules_meanwhile_waits_for_the_next_pass() -> None:
    loop = asyncio.get_running_loop()
    ran: list[str] = []
    at_pass_end(lambda: (ran.append("first pass end"), loop.call_soon(ran.append, "console")))
    await asyncio.sleep(0)
    assert ran == ["first pass end"]
    at_pass_end(lambda: ran.append("second pass end"))  # a new pass end, after the console's turn
    await asyncio.sleep(0)
    assert ran == ["first pass end", "console", "second pass end"]


async def test_a_part_that_raises_does_not_cost_the_others_their_turn() -> None:
    ran: list[str] = []

    def broken() -> None:
        raise RuntimeError("boom")

    at_pass_end(broken)
    at_pass_end(lambda: ran.append("book"))
    await asyncio.sleep(0)
    assert ran == ["book"]
    at_pass_end(lambda: ran.append("next pass"))  # and the pass end is scheduled again
    await asyncio.sleep(0)
    assert ran == ["book", "next pass"]
