"""How a stranger's bot points UNMODIFIED ccxt at the simulator (okx-protocol.md set-up).

Tests and benchmarks use it as "the outside client": plain ccxt, nothing of ours in its path, so
it proves the simulator speaks OKX v5. The product's own adapter (core/venue/okx.py) builds its
ccxt separately, because it also handles sandbox mode, real credentials and rate limits.
"""
from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from core.settings.demo import DEMO_KEY, DEMO_PASSPHRASE, DEMO_SECRET


def okx_client(okx_class: Callable[[dict[str, Any]], Any], rest_url: str, ws_url: str | None = None,
               *, secret: str = DEMO_SECRET) -> Any:
    """``okx_class`` is ccxt.okx, ccxt.async_support.okx or ccxt.pro.okx; demo account by default."""
    ex = okx_class({"apiKey": DEMO_KEY, "secret": secret, "password": DEMO_PASSPHRASE,
                    "enableRateLimit": False,  # loopback only; keep it on for real OKX
                    "options": {"defaultType": "swap", "fetchMarkets": {"types": ["swap"]}}})
    ex.set_sandbox_mode(True)  # demo keys: adds x-simulated-trading: 1; must precede the url overrides
    ex.has["fetchCurrencies"] = False  # else load_markets calls the private /asset/currencies
    ex.urls["api"]["rest"] = rest_url
    if ws_url is not None:
        ex.urls["api"]["ws"] = ws_url
    return ex


async def market_burst(ext: Any, symbol: str, rate: float, seconds: float,
                       amount: float = 1) -> tuple[list[Any], float, float]:
    """The outside client sends ``rate`` market orders of ``amount`` (1 contract; on a Bybit
    client, which counts coins, one contract's coins) a second for ``seconds``,
    alternating buy and sell (as many of each: flat at the end), each on its own schedule slot
    whatever the previous one's latency (late ones catch up). Returns every order's result (or
    exception), the seconds the sending took (the last order's slot included) and the seconds
    until every answer was in."""
    loop = asyncio.get_running_loop()
    n = int(rate * seconds) // 2 * 2
    t0 = loop.time()
    tasks = []
    for i in range(n):
        wait = t0 + i / rate - loop.time()
        if wait > 0:
            await asyncio.sleep(wait)
        tasks.append(asyncio.create_task(
            ext.create_order(symbol, "market", "buy" if i % 2 == 0 else "sell", amount)))
    sent_in = loop.time() - t0 + 1 / rate
    results = list(await asyncio.gather(*tasks, return_exceptions=True))
    return results, sent_in, loop.time() - t0


def bybit_client(bybit_class: Callable[[dict[str, Any]], Any], rest_url: str, ws_url: str | None = None,
                 *, secret: str = DEMO_SECRET) -> Any:
    """``bybit_class`` is ccxt.bybit, ccxt.async_support.bybit or ccxt.pro.bybit pointed at a simulator
    started with ``protocol="bybit"`` (``ws_url`` is its ``ws_url``, ending in /v5)."""
    ex = bybit_class({"apiKey": DEMO_KEY, "secret": secret, "enableRateLimit": False})
    ex.has["fetchCurrencies"] = False  # else load_markets calls the private /v5/asset/coin/query-info
    ex.urls["api"] = {name: rest_url for name in ("spot", "futures", "v2", "public", "private")}
    if ws_url is not None:
        ex.urls["api"]["ws"] = {
            "public": {kind: f"{ws_url}/public/{kind}" for kind in ("spot", "inverse", "option", "linear")},
            "private": {"spot": {"unified": f"{ws_url}/private", "nonUnified": f"{ws_url}/private"},
                        "contract": f"{ws_url}/private", "usdc": f"{ws_url}/private", "trade": f"{ws_url}/trade"},
        }
    return ex
