"""A frame that is not JSON, on each venue's real stream against the simulator: the stream reads
on (no reconnect, the next push arrives), and the log says it once, plainly: the venue and the
stream named, the frame's head shown and cut, no traceback (core/venue/streams.skip_frame)."""
from __future__ import annotations

import asyncio
from decimal import Decimal as D
from typing import Any

import pytest

from core.events import LinkState, StreamStatus
from core.sim.server import SimServer
from core.venue.bybit_stream import BybitStream
from core.venue.okx_stream import OkxStream
from core.venue.streams import FRAME_SHOWN, Stream
from tests.helpers.engine_helpers import VENUES, control, wait_for
from tests.helpers.fault_helpers import LogCapture, send_raw

pytestmark = pytest.mark.timeout(60)

# what each face calls its public mark push, and the stream that subscribes to it
FACES: dict[str, tuple[str, str, str]] = {
    "okx": ("OKX", "BTC-USDT-SWAP", "mark-price"),
    "bybit": ("Bybit", "BTCUSDT", "tickers.BTCUSDT"),
}


def public_stream(srv: SimServer, venue: str, msgs: list[dict[str, Any]], statuses: list[StreamStatus],
                  reasons: list[str]) -> Stream:
    _, inst, topic = FACES[venue]
    if venue == "okx":
        return OkxStream("public", f"{srv.ws_url}/public", [{"channel": topic, "instId": inst}],
                         msgs.append, statuses.append, on_malformed=reasons.append)
    return BybitStream("public", f"{srv.ws_url}/public/linear", [topic], msgs.append, statuses.append,
                       on_malformed=reasons.append)


def marks_at(msgs: list[dict[str, Any]], px: str) -> bool:
    """A mark push of ``px`` (OKX: markPx in each item; Bybit: the ticker's markPrice)."""
    for msg in msgs:
        data = msg.get("data")
        items = data if isinstance(data, list) else [data]
        if any(isinstance(i, dict) and px in (i.get("markPx"), i.get("markPrice")) for i in items):
            return True
    return False


@pytest.mark.parametrize("venue", VENUES)
async def test_a_frame_that_is_not_json_is_logged_once_and_the_stream_reads_on(venue: str) -> None:
    name, inst, _ = FACES[venue]
    srv = SimServer(speed=0, protocol=venue, slippage=D(0), spread_ticks=0)
    await srv.start()
    msgs: list[dict[str, Any]] = []
    statuses: list[StreamStatus] = []
    reasons: list[str] = []
    logs = LogCapture().install()
    stream = public_stream(srv, venue, msgs, statuses, reasons)
    task = asyncio.ensure_future(stream.run())
    try:
        await wait_for(lambda: stream.state is LinkState.CONNECTED and bool(msgs), 10, "the first mark push")
        head = "<html><body>502 Bad Gateway — nginx</body>"  # what a proxy in the way answers
        frame = head + "-" * 300 + "THE-TAIL</html>"
        assert send_raw(srv, "public", frame) == 1
        await control(srv, "/sim/v1/price", {"instId": inst, "px": "61234.5"})
        await wait_for(lambda: marks_at(msgs, "61234.5"), 10, "the mark push after the bad frame")

        said = logs.matching("Bad Gateway")
        assert len(said) == 1, [ln.message for ln in said]  # once
        line = said[0]
        assert line.level == "WARNING" and not line.has_traceback
        assert "\n" not in line.message
        assert line.message.startswith(f"WS public skipped a malformed frame from {name} "
                                       f"({len(frame.encode())} bytes, not valid JSON): ")
        assert head in line.message and "THE-TAIL" not in line.message  # its head, cut
        assert line.message.endswith("...") and len(line.message) < 120 + FRAME_SHOWN
        assert reasons == ["not valid JSON"]  # the consumer is told, once, to resync
        assert [s.state for s in statuses] == [LinkState.CONNECTING, LinkState.CONNECTED]  # no reconnect
        assert not logs.tracebacks()
    finally:
        await stream.stop()
        await asyncio.wait_for(task, 10)
        logs.remove()
        await srv.stop()
