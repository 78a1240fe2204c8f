"""The simulator through an unmodified ccxt client: the symbol, the account's cash, a Bybit-face
simulator with its client."""
from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from decimal import Decimal as D
from typing import Any

import ccxt.async_support
import ccxt.pro

from core.sim.ccxt_client import bybit_client
from core.sim.server import SimServer

BTC = "BTC/USDT:USDT"


async def cash(ex: ccxt.pro.okx) -> D:
    bal = await ex.fetch_balance()
    return D(bal["info"]["data"][0]["details"][0]["cashBal"])


@contextlib.asynccontextmanager
async def bybit_sim(*, pro: bool = False) -> AsyncIterator[tuple[SimServer, Any]]:
    """A Bybit-face simulator (no pacing, slippage or spread) and an unmodified ccxt bybit client
    on it (``pro``: ccxt.pro's, with the simulator's WebSocket), markets loaded; both closed on exit."""
    srv = SimServer(speed=0, protocol="bybit", slippage=D(0), spread_ticks=0)
    await srv.start()
    ex = (bybit_client(ccxt.pro.bybit, srv.url, srv.ws_url) if pro
          else bybit_client(ccxt.async_support.bybit, srv.url))
    try:
        await ex.load_markets()
        yield srv, ex
    finally:
        await ex.close()
        await srv.stop()
