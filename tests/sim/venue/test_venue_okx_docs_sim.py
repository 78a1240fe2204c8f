"""The demo-trading header, as a loopback server receives it."""
from __future__ import annotations

import pytest
from aiohttp import web

from core.settings.config import ExchangeSettings
from core.venue.okx import OkxVenue
from tests.helpers.okx_docs import BTC


@pytest.mark.parametrize(("venue", "sandbox", "sent"), [("sim", False, True), ("okx", True, True), ("okx", False, False)])
async def test_item11_demo_keys_send_x_simulated_trading(venue: str, sandbox: bool, sent: bool) -> None:
    """A real request, read on the wire: the simulator's keys and OKX demo keys need the header."""
    seen: list[str | None] = []

    async def time_(request: web.Request) -> web.Response:
        seen.append(request.headers.get("x-simulated-trading"))
        return web.json_response({"code": "0", "msg": "", "data": [{"ts": "1700000000000"}]})

    app = web.Application()
    app.router.add_get("/api/v5/public/time", time_)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    v = OkxVenue(ExchangeSettings(venue=venue, sandbox=sandbox, url=f"http://127.0.0.1:{port}",
                                  symbols=(BTC.symbol,)), None)
    try:
        assert await v.sync_clock()
    finally:
        await v.close()
        await runner.cleanup()
    assert seen == (["1"] if sent else [None])
