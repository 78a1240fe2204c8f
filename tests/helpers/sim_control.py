"""Steering a running simulator through its control endpoint."""
from __future__ import annotations

from typing import Any

import aiohttp

from core.sim.server import SimServer


async def control(srv: SimServer, path: str, body: dict[str, Any]) -> None:
    async with aiohttp.ClientSession() as s, s.post(srv.url + path, json=body) as r:
        assert r.status == 200, await r.text()
