"""Stream throughput: recorded OKX pushes through our pipeline, through ccxt.pro, and orjson alone.

The fixture (bench/record.py) is replayed ``passes`` times back to back. Each pass gets fresh
trade/order ids and timestamps shifted past the previous pass (done before the clock starts), so
the engine and the journal do real work every time instead of dropping duplicates.

* ours: the frames go through ``OkxStream.pump`` (the hot loop of our stream client, fed by an
  in-memory socket that yields to the event loop every 64 frames as a real socket read would),
  ``PushRouter.on_push`` (okx_parse), the engine's sink, queue and consumer, the ledger, the CLOSE
  and FILL log lines, and the journal; the clock stops when the engine is idle and
  ``journal.flush()`` returned (rows fsynced). The only thing left out is the engine's REST
  confirmation of close rows against positions-history (a network round trip per close).
* ccxt: the same frames through ccxt.pro okx's own client path: ``Client.handle_text_or_binary_message``
  (its orjson decode) -> ``okx.handle_message`` (parse into its caches, resolve futures). No socket.
* ours parse only (extra row): our decoder + okx_parse into domain objects, no engine.
* json floor: ``orjson.loads`` of each frame, nothing else.
* host reference: ``bench.common.ref_loop_ms`` (a fixed pure-Python loop), once per round.

Every round runs the five back to back, so they see the same host mode; each figure's spread
over the rounds goes with it (``--compare`` flags a change only outside it), and the pipeline's
cost is also given as a multiple of the JSON-decode floor of the same round
(``stream_cost_x_json_floor``: how many frame decodes one frame through the whole pipeline
costs, in CPU time of this process, which a faster or slower host does not change).
"""
from __future__ import annotations

import asyncio
import gc
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import ccxt.pro
import orjson

from bench.common import REF_LOOP_N, median, per_ref, ref_loop_ms, spread
from bench.record import SYMBOLS, load
from core.engine import Engine
from core.journal import Journal, read_fills
from core.settings.config import ExchangeSettings
from core.sim.ccxt_client import okx_client
from core.sim.server import SimServer
from core.venue.okx import OkxVenue
from core.venue.okx_stream import OkxStream

ID_KEYS = ("tradeId", "ordId", "billId")
TS_KEYS = ("ts", "fillTime", "uTime", "cTime", "pTime")


def expand(frames: list[str], passes: int) -> list[str]:
    """``passes`` copies of the fixture, each with unique ids and later timestamps."""
    decoded = [orjson.loads(f) for f in frames]
    stamps = [int(v) for m in decoded for it in m["data"] for k in TS_KEYS if str(v := it.get(k, "")).isdigit()]
    span = max(stamps) - min(stamps) + 1000
    out: list[str] = []
    for p in range(passes):
        for msg in decoded:
            if p == 0:
                out.append(orjson.dumps(msg).decode())
                continue
            data = []
            for it in msg["data"]:
                it = dict(it)
                for k in ID_KEYS:
                    if it.get(k):
                        it[k] = f"{it[k]}{p:04d}"
                for k in TS_KEYS:
                    if str(it.get(k, "")).isdigit():
                        it[k] = str(int(it[k]) + p * span)
                data.append(it)
            out.append(orjson.dumps({**msg, "data": data}).decode())
    return out


class MemorySocket:
    """What ``OkxStream.pump`` iterates: text frames, yielding to the loop every ``batch`` frames."""

    def __init__(self, frames: list[str], batch: int = 64) -> None:
        self.frames, self.batch = frames, batch

    async def __aiter__(self) -> AsyncIterator[str]:
        for i, raw in enumerate(self.frames):
            if i % self.batch == 0:
                await asyncio.sleep(0)
            yield raw


async def _markets_source() -> SimServer:
    srv = SimServer(speed=0)
    await srv.start()
    return srv


async def run_ours(srv: SimServer, frames: list[str]) -> tuple[float, int, float]:
    """Seconds for the whole pipeline, the fills found in the journal afterwards, and the CPU
    seconds of this process meanwhile (the journal's writer thread included)."""
    with tempfile.TemporaryDirectory(prefix="perpdesk-bench-") as tmp:
        venue = OkxVenue(ExchangeSettings(venue="sim", url=srv.url, symbols=tuple(SYMBOLS)), None)
        await venue.connect()
        journal = Journal(Path(tmp))
        engine = Engine(venue, journal, confirm_closes=False, position_snapshot_interval=3600)
        await journal.start()
        # Engine.start() minus the network: consumer and close writer running, sink wired
        engine.confirmer.start()
        consumer = asyncio.create_task(engine.consume())
        venue.router.sink = engine.inbound.sink
        stream = OkxStream("replay", "memory://", [], venue.router.on_push, engine.inbound.sink)
        gc.collect()
        t0, c0 = time.perf_counter(), time.process_time()
        await stream.pump(MemorySocket(frames))  # type: ignore[arg-type]
        while not (engine.idle and engine.confirmer.idle):
            await asyncio.sleep(0)
        await journal.flush()
        dt, cpu = time.perf_counter() - t0, time.process_time() - c0
        consumer.cancel()
        await engine.confirmer.cancel()
        await journal.close()
        await venue.close()
        return dt, len(read_fills(Path(tmp))), cpu


async def ccxt_client(srv: SimServer) -> tuple[Any, Any]:
    ex = okx_client(ccxt.pro.okx, srv.url, srv.ws_url)
    await ex.load_markets()
    return ex, ex.client(f"{srv.ws_url}/private")


async def run_parse_only(venue: OkxVenue, frames: list[str]) -> float:
    """Our decoder + okx_parse into domain objects, no engine: the like-for-like of ccxt's parse."""
    out: list[object] = []
    venue.router.sink = out.append
    stream = OkxStream("replay", "memory://", [], venue.router.on_push, out.append)
    gc.collect()
    t0 = time.perf_counter()
    await stream.pump(MemorySocket(frames))  # type: ignore[arg-type]
    return time.perf_counter() - t0


def run_ccxt(client: Any, frames: list[str]) -> float:
    gc.collect()
    t0 = time.perf_counter()
    for raw in frames:
        client.handle_text_or_binary_message(raw)
    return time.perf_counter() - t0


def run_json(frames: list[str]) -> float:
    return run_json_cpu(frames)[0]


def run_json_cpu(frames: list[str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of ``orjson.loads`` over the frames: the floor."""
    loads = orjson.loads
    gc.collect()
    t0, c0 = time.perf_counter(), time.process_time()
    for raw in frames:
        loads(raw)
    return time.perf_counter() - t0, time.process_time() - c0


async def bench_stream(repeats: int, passes: int) -> dict[str, Any]:
    """Median msgs/s of the three paths over ``repeats`` interleaved rounds, and the median of
    the per-round ratios ours / ccxt."""
    base = load()
    frames = expand(base, passes)
    fills_expected = sum(1 for f in map(orjson.loads, frames) if f["arg"]["channel"] == "orders"
                         for it in f["data"] if it.get("tradeId"))
    srv = await _markets_source()
    ex, client = await ccxt_client(srv)
    ours: list[float] = []
    theirs: list[float] = []
    floor: list[float] = []
    ours_cpu: list[float] = []
    floor_cpu: list[float] = []
    parse: list[float] = []
    refs: list[float] = []
    fills = 0
    venue = OkxVenue(ExchangeSettings(venue="sim", url=srv.url, symbols=tuple(SYMBOLS)), None)
    try:
        await venue.connect()
        run_ccxt(client, base)  # warm-up (imports, caches)
        for _ in range(repeats):
            # the floor right before and right after ours (and once more after ccxt): a floor
            # is the least of its runs (a run can only be slowed by the host, never sped up)
            json_runs = [run_json_cpu(frames)]
            dt, fills, cpu = await run_ours(srv, frames)
            json_runs.append(run_json_cpu(frames))
            ours.append(len(frames) / dt)
            ours_cpu.append(cpu)
            theirs.append(len(frames) / run_ccxt(client, frames))
            json_runs.append(run_json_cpu(frames))
            floor.append(len(frames) / min(w for w, _ in json_runs))
            floor_cpu.append(min(c for _, c in json_runs))
            parse.append(len(frames) / await run_parse_only(venue, frames))
            refs.append(ref_loop_ms())
    finally:
        await venue.close()
        await ex.close()
        await srv.stop()
    med = median
    # The ratio pairs each round's two paths (run back to back, so under the same host load): this
    # host's speed swings by half within a minute, and a ratio of two medians taken from different
    # moments swung with it (2.4x-3.3x for one commit).
    ratios = [a / b for a, b in zip(ours, theirs, strict=True)]
    # the pipeline's CPU per frame / the decode's CPU per frame, per round: CPU time, not wall
    # time, so a round in which the host took the core away for a while does not count it
    cost_x, cost_spread = per_ref(ours_cpu, floor_cpu, 1)
    parse_x, _ = per_ref(floor, parse, 1)
    # the pipeline's CPU per frame in iterations of the pure-Python reference loop
    cost_iter = [c * 1e6 / len(frames) for c in ours_cpu]  # us per frame
    cost_ref, cost_ref_spread = per_ref(cost_iter, [r * 1000 / REF_LOOP_N for r in refs], 0)
    return {"stream_msgs_per_s": round(med(ours)), "ccxt_parse_msgs_per_s": round(med(theirs)),
            "stream_vs_ccxt_x": round(med(ratios), 2),
            "json_floor_msgs_per_s": round(med(floor)), "_ours_parse_only_msgs_per_s": round(med(parse)),
            "stream_cost_x_json_floor": cost_x, "stream_cost_ref_iters": cost_ref,
            "_parse_only_x_json_floor": parse_x,
            "refs": refs,
            "spread": {"stream_msgs_per_s": spread(ours, 0), "ccxt_parse_msgs_per_s": spread(theirs, 0),
                       "stream_vs_ccxt_x": spread(ratios), "json_floor_msgs_per_s": spread(floor, 0),
                       "stream_cost_x_json_floor": cost_spread, "stream_cost_ref_iters": cost_ref_spread},
            "_detail": f"{len(frames)} frames ({len(base)} recorded x {passes}), {fills} fills journaled "
                       f"(expected {fills_expected}); runs ours {[round(x) for x in ours]}, "
                       f"ccxt {[round(x) for x in theirs]}, paired ratios {[round(x, 2) for x in ratios]}, "
                       f"host reference {[round(x, 1) for x in refs]} ms, CPU us/frame ours "
                       f"{[round(c * 1e6 / len(frames), 1) for c in ours_cpu]} json "
                       f"{[round(c * 1e6 / len(frames), 2) for c in floor_cpu]}"}


if __name__ == "__main__":
    from bench.common import quiet_logs

    quiet_logs()
    print(asyncio.run(bench_stream(3, 10)))
