"""SimServer: the OKX v5 simulator on one loopback port (REST, WebSocket and /sim/v1 control).

It runs inside the caller's event loop (the console embeds it; ``perpdesk sim`` runs it alone).
Two background tasks drive it: the market ticker (random walk scaled by ``speed``, which also
fires TP/SL, fills resting orders and liquidates) and the funding scheduler (every
``funding_interval_s / speed`` real seconds). With ``speed=0`` prices only move through
``POST /sim/v1/price`` and funding only settles through ``POST /sim/v1/funding``.
"""
from __future__ import annotations

import asyncio
import contextlib
import secrets
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web
from loguru import logger

from core.settings.demo import DEMO_KEY, DEMO_PASSPHRASE, DEMO_SECRET
from core.sim import changelog, httplog, persist
from core.sim import okx_shapes as shapes
from core.sim.auth import verify_rest
from core.sim.bybit_rest import BybitRest
from core.sim.bybit_ws import BybitHub
from core.sim.candle_pushes import CandlePushes
from core.sim.candles import CandleBook
from core.sim.control import ControlApi
from core.sim.exchange import Exchange, Push, SimError
from core.sim.market import INSTRUMENTS, InstrumentSpec, PriceProcess
from core.sim.okx_snapshots import OkxSnapshots
from core.sim.rest import Rest
from core.sim.ws import Hub
from core.support.net import is_loopback
from core.support.safefile import UnsafeFileError

DEMO_CASH = Decimal("10000")
SAVE_SOON_S = 0.1  # after a trade request, the state file is written within about this long
PROTOCOLS = ("okx", "bybit")  # the faces the one exchange core can show (``[sim] protocol``)




def _json(payload: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(payload), status=status, content_type="application/json")


class SimServer:
    """The embedded exchange. ``await start()``; afterwards ``port``, ``url`` and ``ws_url`` are set."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, speed: float = 1.0, seed: int = 1,
                 funding_interval_s: float = 28800.0, allow_remote: bool = False, *,
                 tick_s: float = 0.25, slippage: Decimal = Decimal("0.00005"), spread_ticks: int = 1,
                 taker_fee: Decimal = Decimal("0.0005"), maker_fee: Decimal = Decimal("0.0002"),
                 start_cash: Decimal = DEMO_CASH, instruments: dict[str, InstrumentSpec] | None = None,
                 state_path: Path | None = None, fresh: bool = False, save_interval_s: float = 1.5,
                 protocol: str = "okx") -> None:
        if protocol not in PROTOCOLS:
            raise ValueError(f"unknown simulator protocol {protocol!r}: use one of {', '.join(PROTOCOLS)}")
        self.protocol = protocol
        if not is_loopback(host):
            if not allow_remote:
                raise ValueError(f"refusing to bind the simulator to non-loopback address {host!r}; "
                                 "pass allow_remote=True (--allow-remote) if you really mean it")
            logger.warning("SIM binding to non-loopback address {} - anyone who can reach it can trade "
                           "with the published demo credentials", host)
        if speed < 0:
            raise ValueError("speed must be >= 0")
        self.host, self.port, self.speed, self.seed = host, port, speed, seed
        # with --allow-remote the control API needs this token (printed at start with the URLs)
        self.control_token: str | None = secrets.token_urlsafe(24) if allow_remote else None
        self.funding_interval_s = funding_interval_s
        self.tick_s = tick_s
        specs = instruments or INSTRUMENTS
        self.market = PriceProcess(specs, seed=seed)
        interval_ms = int(funding_interval_s / speed * 1000) if speed > 0 else int(funding_interval_s * 1000)
        self.exchange = Exchange(specs, self.market.prices, self.market.funding_rates, slippage=slippage,
                                 spread_ticks=spread_ticks, taker_fee=taker_fee, maker_fee=maker_fee,
                                 funding_interval_ms=max(interval_ms, 1))
        self.account = self.exchange.add_account(DEMO_KEY, DEMO_SECRET, DEMO_PASSPHRASE, start_cash)
        self.candles = CandleBook(specs)
        self.candles.backfill(self.market.prices, self.exchange.clock(), seed)
        snapshots = OkxSnapshots(self.exchange, self.candles, self.ticker_item, self.funding_item)
        self.hub: Hub | BybitHub = Hub(self.exchange.accounts, lambda i: i in specs, snapshots,
                                       clock=lambda: self.exchange.clock() / 1000)
        if protocol == "bybit":  # the same exchange core behind Bybit's v5 face (core.sim.bybit_*)
            self.bybit = BybitRest(self)
            self.hub = BybitHub(self, self.bybit)
        self.exchange.listening = self.hub.listening
        self.rest = Rest(self)
        self.candle_pushes = CandlePushes(self.candles, self.exchange, lambda ch: self.hub.listening(ch),
                                          self._public_push, self.flush)
        self.funding_history: list[dict[str, str]] = []
        self.faults: list[dict[str, Any]] = []
        self.stats = {inst: {"open": px, "high": px, "low": px} for inst, px in self.market.prices.items()}
        self._runner: web.AppRunner | None = None
        self.stopping: asyncio.Event | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._saver: asyncio.Task[None] | None = None
        self.last_rates = dict(self.market.funding_rates)
        self.url = ""
        self.ws_url = ""
        # The state file (core.sim.persist): read now, so a bad file fails before anything listens.
        self.state_path = state_path
        self.save_interval_s = save_interval_s
        self.resumed = False
        self._saved: bytes | None = None
        self._encoder = persist.Encoder()
        self._changed = asyncio.Event()  # a trade or control request: save soon
        # what changed, on disk before an answer or an account push leaves (core.sim.changelog)
        self.changes = changelog.ChangeLog(state_path) if state_path is not None else None
        if state_path is not None and not fresh:
            saved = changelog.load(state_path)
            if saved is not None:
                persist.restore(self, saved, str(state_path))
                acct = self.exchange.accounts.get(DEMO_KEY)
                if acct is None:
                    raise persist.SimStateError(f"{state_path}: holds no demo account")
                self.account = acct
                self.resumed = True
                assert self.changes is not None
                self.changes.seq = max(self.changes.seq, int(saved.get("log_seq", 0)))
        if self.changes is not None:
            self.changes.reset(self)

    # ------------------------------------------------------------------ lifecycle

    def build_app(self) -> web.Application:
        control = ControlApi(self)
        app = web.Application(client_max_size=1 << 20, middlewares=[control.guard])
        if isinstance(self.hub, BybitHub):
            app.router.add_get("/v5/public/linear", self.hub.handle)
            app.router.add_get("/v5/private", self.hub.handle)
            app.router.add_route("*", "/v5/{tail:.*}", self.bybit.handle)
        else:
            app.router.add_route("*", "/api/v5/{tail:.*}", self._api)
            app.router.add_get("/ws/v5/{kind}", self.hub.handle)
        control.routes(app)
        return app

    async def start(self) -> None:
        if self.state_path is not None:  # the account (and its uid) is on disk before anyone trades
            try:
                self.save()
            except (OSError, UnsafeFileError) as exc:
                raise persist.SimStateError(f"cannot write the simulator state {self.state_path}: "
                                            f"{getattr(exc, 'strerror', None) or exc}") from None
        self.stopping = asyncio.Event()
        self._runner = web.AppRunner(self.build_app(), access_log=None, handle_signals=False, logger=httplog.LOGGER)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, reuse_address=True)
        await site.start()
        addresses = self._runner.addresses  # the bound sockets' names: how port 0 is learnt
        if addresses:
            self.port = int(addresses[0][1])
        host = f"[{self.host}]" if ":" in self.host else self.host
        self.url = f"http://{host}:{self.port}"
        self.ws_url = f"ws://{host}:{self.port}" + ("/v5" if self.protocol == "bybit" else "/ws/v5")
        if self.state_path is not None:
            self._saver = asyncio.create_task(self._save_loop(), name="sim-save")
        if self.speed > 0:
            self._tasks.append(asyncio.create_task(self._market_loop(), name="sim-market"))
            self._tasks.append(asyncio.create_task(self._funding_loop(), name="sim-funding"))

    async def pause(self) -> None:
        """Freeze the market: no more random-walk ticks or scheduled funding (control still works)."""
        await self._stop_tasks()

    async def _stop_tasks(self) -> None:
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            try:
                await t
            except (asyncio.CancelledError, Exception):
                pass
        self._tasks.clear()

    async def stop(self) -> None:
        if self.stopping is not None:
            self.stopping.set()  # releases requests held by a "timeout" fault
        await self._stop_tasks()
        await self.hub.drop_all()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._saver is not None:
            self._saver.cancel()
            try:
                await self._saver
            except (asyncio.CancelledError, Exception):
                pass
            self._saver = None
            if self.changes is not None:
                await self.changes.idle()  # a sync in a thread ends before the log is cut
            try:
                self.save()
            except (OSError, UnsafeFileError) as exc:
                logger.error("SIM state not saved at stop to {}: {}", self.state_path, exc)
        if self.changes is not None:
            self.changes.close()

    # ------------------------------------------------------------------ the state file

    def save(self) -> bool:
        """Write the state file now if anything changed since the last write; True if written."""
        if self.state_path is None or self.changes is None:
            return False
        _, logged = self.changes.mark()
        payload = self._encoder.encode(self)
        if payload == self._saved:
            return False
        persist.write(self.state_path, payload)
        self._saved = payload
        self.changes.cut(logged)
        return True

    async def _durable(self, changed: bool) -> None:
        """A request's change written now, and the answer held until it (and any change written
        before, which a query may show) is on disk: one sync for all the requests waiting."""
        assert self.changes is not None
        try:
            upto = self.changes.write(self) if changed else self.changes.written
        except (OSError, UnsafeFileError) as exc:  # a full disk must not stop the exchange; the full save retries
            logger.error("SIM state change not written to {}: {}", self.changes.path, exc)
            upto = self.changes.written
        if changed:
            self._changed.set()
        await self.changes.durable(upto)

    def mark_changed(self) -> None:
        """A trade or a control request changed the exchange: the state file is saved soon."""
        self._changed.set()

    def keep(self) -> None:
        """Before an answer or an account's push leaves: what changed is on disk (one change-log
        line, fsynced; see core.sim.changelog), so a crash cannot lose what a client was told."""
        if self.changes is None:
            return
        try:
            self.changes.append(self)
        except (OSError, UnsafeFileError) as exc:  # a full disk must not stop the exchange; the full save retries
            logger.error("SIM state change not written to {}: {}", self.changes.path, exc)
        self._changed.set()

    async def _save_loop(self) -> None:
        """Every ``save_interval_s``, and soon after a trade request: snapshot in the loop
        (consistent), write in a thread.

        Why soon after a trade: the journal writes a fill within milliseconds, so the window in
        which a crash leaves the journal ahead of the exchange must be short. A huge history
        stretches the spacing (to ten times what a save costs), so that saving never takes more
        than a tenth of the loop's time.
        """
        assert self.state_path is not None and self.changes is not None
        loop = asyncio.get_running_loop()
        pause, gap = self.save_interval_s, SAVE_SOON_S
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), pause)
            await asyncio.sleep(gap)  # let a burst of requests finish: one write for all of them
            self._changed.clear()
            try:
                began = loop.time()
                _, logged = self.changes.mark()
                payload = self._encoder.encode(self)
                if payload != self._saved:
                    await asyncio.to_thread(persist.write, self.state_path, payload)
                    self._saved = payload
                    await self.changes.idle()
                    self.changes.cut(logged)
                cost = 10 * (loop.time() - began)
                pause, gap = max(self.save_interval_s, cost), max(SAVE_SOON_S, cost)
            except Exception:  # a full disk must not stop the exchange; said in the log, retried
                logger.exception("SIM state save to {} failed", self.state_path)

    async def __aenter__(self) -> SimServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # ------------------------------------------------------------------ market driving

    def flush(self, *, kept: bool = False) -> None:
        """Send every push the exchange produced since the last flush; an account's pushes only
        once what they tell is on disk (``keep``; ``kept``: the caller just did)."""
        pushes = self.exchange.drain()
        if self.changes is not None:
            private = any(p.uid is not None for p in pushes)
            if not kept and (private or self.changes.moved(self.exchange.accounts.values())):
                self.keep()  # a fill of a price move or funding: kept before anyone can be told (push or query)
            elif private and self.changes.unsynced:
                self.changes.sync()  # pushes of another request whose line is written, not yet synced
        self.hub.fanout(pushes)

    def set_price(self, inst_id: str, px: Decimal) -> Decimal:
        """Move a price (control endpoint and tests): fires TP/SL, resting orders, liquidations."""
        self.exchange.spec(inst_id)
        new = self.market.set_price(inst_id, px)
        self._on_prices([inst_id])
        return new

    def settle_funding(self, inst_id: str, rate: Decimal | None = None, *, scheduled: bool = False) -> list[Any]:
        rate = self.market.funding_rates[inst_id] if rate is None else rate
        # the settlement's record first: the bills' pushes (the Bybit face's Funding executions
        # carry the rate as feeRate) read the rate of the settlement from it
        now = self.exchange.clock()
        self.funding_history.append({"fundingRate": shapes.s(rate), "fundingTime": str(now), "instId": inst_id,
                                     "instType": "SWAP", "method": "current_period", "realizedRate": shapes.s(rate),
                                     "formulaType": "withRate"})
        bills = self.exchange.settle_funding(inst_id, rate, scheduled=scheduled)
        self._public_push("funding-rate", inst_id, self.funding_item(inst_id))
        self.flush()
        return bills

    def _on_prices(self, insts: list[str]) -> None:
        for inst in insts:
            st = self.stats[inst]
            px = self.market.prices[inst]
            st["high"], st["low"] = max(st["high"], px), min(st["low"], px)
            self.exchange.on_price(inst)
            self.candle_pushes.on_price(inst, px)
            now = str(self.exchange.clock())
            self._public_push("mark-price", inst, {"instType": "SWAP", "instId": inst, "markPx": shapes.s(px), "ts": now})
            self._public_push("tickers", inst, self.ticker_item(inst))
        self.flush()

    def _public_push(self, channel: str, inst: str, item: Any) -> None:
        if self.hub.listening(channel):
            self.exchange.outbox.append(Push(channel, None, inst, item))

    async def _market_loop(self) -> None:
        loop = asyncio.get_running_loop()
        last = loop.time()
        while True:
            await asyncio.sleep(self.tick_s)
            now = loop.time()
            dt, last = now - last, now
            try:
                changed = self.market.step(dt * self.speed)
                if changed:
                    self._on_prices(list(changed))
                for inst, rate in self.market.funding_rates.items():
                    if rate != self.last_rates.get(inst):
                        self.last_rates[inst] = rate
                        self._public_push("funding-rate", inst, self.funding_item(inst))
                self.flush()
            except Exception:  # the simulator must keep ticking; a bug here is logged, not fatal
                logger.exception("SIM market tick failed")

    async def _funding_loop(self) -> None:
        while True:
            await asyncio.sleep(min(1.0, max(0.01, self.funding_interval_s / self.speed / 20)))
            now = self.exchange.clock()
            for inst, due in list(self.exchange.next_funding.items()):
                if now >= due:
                    try:
                        bills = self.settle_funding(inst, scheduled=True)
                        logger.info("SIM funding settled {} rate={} bills={}", inst,
                                    self.market.funding_rates[inst], len(bills))
                    except Exception:
                        logger.exception("SIM funding settlement failed")

    # ------------------------------------------------------------------ shapes needing market state

    def ticker_item(self, inst: str) -> dict[str, str]:
        bid, ask = self.exchange.bid_ask(inst)
        st = self.stats[inst]
        last = self.market.prices[inst]
        vol = self.exchange.volume[inst]
        ct_val = self.exchange.specs[inst].ct_val
        return {"instType": "SWAP", "instId": inst, "last": shapes.s(last), "lastSz": "1", "askPx": shapes.s(ask),
                "askSz": "100", "bidPx": shapes.s(bid), "bidSz": "100", "open24h": shapes.s(st["open"]),
                "high24h": shapes.s(st["high"]), "low24h": shapes.s(st["low"]), "volCcy24h": shapes.s(vol * ct_val),
                "vol24h": shapes.s(vol), "sodUtc0": shapes.s(st["open"]), "sodUtc8": shapes.s(st["open"]),
                "ts": str(self.exchange.clock())}

    def funding_item(self, inst: str) -> dict[str, str]:
        rate = self.market.funding_rates[inst]
        nxt = self.exchange.next_funding[inst]
        return {"formulaType": "withRate", "fundingRate": shapes.s(rate), "fundingTime": str(nxt),
                "impactValue": "20000", "instId": inst, "instType": "SWAP", "interestRate": "0.0001",
                "maxFundingRate": "0.0075", "method": "current_period", "minFundingRate": "-0.0075",
                "nextFundingRate": "", "nextFundingTime": str(nxt + self.exchange.funding_interval_ms),
                "premium": shapes.s(rate), "settFundingRate": shapes.s(rate), "settState": "settled",
                "ts": str(self.exchange.clock())}

    # ------------------------------------------------------------------ REST

    async def _fault(self) -> web.Response | None:
        if not self.faults:
            return None
        f = self.faults[0]
        f["count"] -= 1
        if f["count"] <= 0:
            self.faults.pop(0)
        kind = f["kind"]
        if kind == "rate_limit":
            return _json({"code": "50011", "msg": "Too Many Requests", "data": []}, 429)
        if kind == "timeout":
            assert self.stopping is not None
            try:
                await asyncio.wait_for(self.stopping.wait(), float(f.get("delay", 30.0)))  # float ok: seconds
            except TimeoutError:
                pass
            return _json({"code": "50004", "msg": "Endpoint request timeout", "data": []}, 504)
        return _json({"code": "50026", "msg": "System error, please try again later", "data": []}, 503)

    async def _api(self, request: web.Request) -> web.Response:
        faulted = await self._fault()
        if faulted is not None:
            return faulted
        path = request.match_info["tail"]
        route = self.rest.routes.get((request.method, path))
        if route is None:
            return _json({"code": "50014" if request.method in ("GET", "POST") else "405",
                          "msg": f"Endpoint {request.method} /api/v5/{path} not supported by perpdesk sim",
                          "data": []}, 404)
        private, handler = route
        try:
            body_text = await request.text() if request.method != "GET" else ""
        except UnicodeDecodeError:  # not UTF-8: no JSON at all (was an HTTP 500 with a traceback)
            return _json({"code": "50002", "msg": "Json data format error", "data": []}, 400)
        try:
            acct = None
            if private:
                acct = verify_rest(self.exchange.accounts, request.headers, request.method,
                                   request.raw_path, body_text, now=self.exchange.clock() / 1000)
            body: Any = None
            if body_text:
                try:
                    body = orjson.loads(body_text)
                except orjson.JSONDecodeError:
                    raise SimError("50002", "Json data format error", 400) from None
            code, msg, data = handler(acct, dict(request.query), body)
        except SimError as e:
            self.flush()
            return _json({"code": e.code, "msg": e.msg, "data": []}, e.http)
        if self.changes is not None:  # the answer leaves only once what it tells is on disk
            await self._durable(private and request.method == "POST")
        self.flush(kept=True)
        return _json({"code": code, "msg": msg, "data": data})
