"""The simulator's own benchmark (bench/sim_orders.py, by the simulator's author) as one more row.

It prints its figures; this wrapper runs it in-process, keeps its output as a note and picks the
orders/s figure out of it, so the two stay one implementation.
"""
from __future__ import annotations

import asyncio
import contextlib
import io
import re
from typing import Any


def bench_sim_orders(n: int) -> dict[str, Any]:
    from bench.sim_orders import run

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        asyncio.run(run(n, False))
    text = out.getvalue()
    m = re.search(r"orders/s:\s*([\d.]+)", text)
    return {"_sim_orders_per_s": round(float(m.group(1))) if m else None,
            "_detail": " ".join(text.split())}
