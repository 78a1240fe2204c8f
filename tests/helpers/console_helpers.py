"""A minimal test double of the Engine API (docs/architecture.md) for the console tests.

Why a double: the console's pilot tests need full control of what arrives and when (pilot.press
waits for idle, so a live feed would make them flaky). It records every submitted command and only
emits events when a test calls ``emit``. The sim-backed engine replaces it in integration tests.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from core.events import (
    AccountSnapshot,
    CloseAll,
    ClosePosition,
    Command,
    CommandResult,
    KillSwitch,
    LinkState,
    PauseStrategy,
    ResumeTrading,
    RiskStatus,
    SetTpSl,
    StreamStatus,
    TradingState,
)
from core.journal.history import DayHistory, HistoryKind, HistoryPager, read_day_async
from core.model import (
    CloseReason,
    CloseResult,
    Fill,
    FundingPayment,
    Instrument,
    Liquidity,
    OrderSide,
    Origin,
    PositionSide,
    PositionSnapshot,
)

SIZE = (120, 40)  # the terminal the pilot tests run the console in
T0 = datetime(2024, 5, 6, 12, 0, 0, tzinfo=UTC)
BTC = "BTC/USDT:USDT"
ETH = "ETH/USDT:USDT"
INSTRUMENTS = {
    BTC: Instrument(BTC, "BTC-USDT-SWAP", Decimal("0.01"), Decimal("0.1"), Decimal("0.1"),
                    Decimal("0.1"), "USDT", "BTC"),
    ETH: Instrument(ETH, "ETH-USDT-SWAP", Decimal("0.1"), Decimal("1"), Decimal("1"),
                    Decimal("0.01"), "USDT", "ETH"),
}


def D(text: str) -> Decimal:
    return Decimal(text)


def life(symbol: str, pos_side: str = "net") -> str:
    """The position id ``snapshot`` gives a life (a close confirmation names the life it showed)."""
    return f"{symbol}#{pos_side}#1714996800000"


def snapshot(symbol: str = BTC, side: PositionSide = PositionSide.LONG, contracts: str = "10",
             entry: str = "60000", mark: str = "60500", *, pos_side: str = "net",
             funding: str = "-0.0123", liq: str | None = "48000.5") -> PositionSnapshot:
    inst = INSTRUMENTS[symbol]
    ct = D(contracts)
    upnl = (D(mark) - D(entry)) * ct * inst.contract_size * side.sign
    return PositionSnapshot(symbol, life(symbol, pos_side), pos_side, side, ct,
                            inst.contract_size, D(entry), D(mark), upnl, D(funding), D("10"),
                            "cross", D(liq) if liq else None, T0, T0)


def fill(n: int, symbol: str = BTC, side: OrderSide = OrderSide.BUY, contracts: str = "2",
         price: str = "60000.1") -> Fill:
    inst = INSTRUMENTS[symbol]
    return Fill(f"f{n}", f"o{n}", f"pdc{n}", symbol, side, D(contracts), inst.contract_size,
                D(price), D("0.06"), "USDT", T0.replace(second=n % 60), liquidity=Liquidity.TAKER,
                origin=Origin.CONSOLE)


def close(n: int, symbol: str = BTC, net_gross: str = "12.5") -> CloseResult:
    inst = INSTRUMENTS[symbol]
    return CloseResult(T0.replace(minute=5, second=n % 60), symbol, f"{symbol}#net#1", PositionSide.LONG,
                       CloseReason.MANUAL, D("0.1"), D("0.05"), D("0.05"), D("5"),
                       inst.contract_size, D("60000"), D("60250"), D(net_gross), D("0.3"), D("0"),
                       D("-0.01"), T0, fill_ids=(f"c{n}",))


def funding(n: int, symbol: str = BTC, amount: str = "-0.0301") -> FundingPayment:
    return FundingPayment(f"b{n}", symbol, f"{symbol}#net#1", D("0.0001"), D("10"), D("0.1"),
                          D("60200"), D(amount), "USDT", T0.replace(minute=8))


def account() -> AccountSnapshot:
    return AccountSnapshot(D("10234.5678"), D("9123.45"), D("50"), "USDT", T0)


@dataclass
class Report:
    """Shaped like core.reconcile.compare.ReconcileReport (the console uses it duck-typed)."""

    rows: list[Any] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.rows)

    def lines(self) -> list[str]:
        out = [f"{r.symbol}  {r.field}  {r.journal}  {r.exchange}  {'ok' if r.ok else 'DIFF'}"
               for r in self.rows]
        return out + [f"{sum(not r.ok for r in self.rows)} difference(s)"]


@dataclass
class ReportRow:
    symbol: str
    field: str
    journal: str
    exchange: str
    ok: bool


class FakeEngine:
    """Engine API double: instruments, subscribe, submit (recorded; pause, resume and the kill
    switch move ``trading_state``, SetTpSl records ``protections``), positions, account,
    estimate_close_pnl (pro rata of uPnL, as the real engine), reconcile, links, mark,
    risk_status, tp_sl, and
    today_history / history_pager over a real journal directory (``journal_dir``)."""

    def __init__(self, positions: list[PositionSnapshot] | None = None, *,
                 read_only: bool = False, report: Report | None = None,
                 result: CommandResult | None = None, journal_dir: Path | None = None) -> None:
        self.instruments = dict(INSTRUMENTS)
        self.read_only = read_only
        self._positions = {(p.symbol, p.pos_side): p for p in positions or []}
        self._account: AccountSnapshot | None = account()
        self.subscribers: list[Callable[[object], None]] = []
        self.commands: list[Command] = []
        self.report = report or Report([ReportRow(BTC, "contracts", "10", "10", True)])
        self.result = result
        self.hold: Any = None  # an asyncio.Event: submit waits on it when set (in-flight tests)
        self.journal_dir = journal_dir  # today_history / history_pager read it, as the engine does
        self.history_gate: Any = None  # an asyncio.Event: today_history waits on it when set
        self.trading_state = TradingState.RUNNING  # pause / resume / kill move it, as the engine
        # what risk_status() returns; None (unlike the engine) keeps the risk line hidden, so
        # the layout snapshots stay those of an engine without a risk guard
        self.risk: RiskStatus | None = None
        self.protections: dict[tuple[str, str], tuple[Decimal | None, Decimal | None]] = {}

    def subscribe(self, callback: Callable[[object], None]) -> Callable[[], None]:
        self.subscribers.append(callback)
        return lambda: self.subscribers.remove(callback)

    def emit(self, event: object) -> None:
        for callback in list(self.subscribers):
            callback(event)

    async def submit(self, command: Command) -> CommandResult:
        self.commands.append(command)
        if self.hold is not None:
            await self.hold.wait()
        if self.result is not None:
            return self.result
        if isinstance(command, ClosePosition):
            return CommandResult(True, f"closing {command.symbol} {command.contracts or 'all'}",
                                 ("o1",))
        if isinstance(command, CloseAll):
            return CommandResult(True, "closing all", ("o1", "o2"))
        if isinstance(command, PauseStrategy):
            self.trading_state = TradingState.PAUSED
            return CommandResult(True, "trading paused")
        if isinstance(command, ResumeTrading):
            self.trading_state = TradingState.RUNNING
            return CommandResult(True, "trading resumed")
        if isinstance(command, KillSwitch):
            self.trading_state = TradingState.HALTED
            return CommandResult(True, "kill switch: flat, halted")
        if isinstance(command, SetTpSl):
            self.protections[(command.symbol, command.pos_side)] = (command.take_profit,
                                                                   command.stop_loss)
            return CommandResult(True, f"TP/SL set on {command.symbol}")
        return CommandResult(True, f"order placed: {type(command).__name__}", ("o9",))

    def positions(self) -> list[PositionSnapshot]:
        return list(self._positions.values())

    def account(self) -> AccountSnapshot | None:
        return self._account

    def links(self) -> dict[str, LinkState]:
        return {"public": LinkState.CONNECTED, "private": LinkState.CONNECTED}

    def estimate_close_pnl(self, symbol: str, pos_side: str, contracts: Decimal) -> Decimal:
        pos = self._positions.get((symbol, pos_side))
        if pos is None or pos.contracts == 0:
            return Decimal(0)
        return pos.unrealized_pnl * min(contracts, pos.contracts) / pos.contracts

    async def reconcile(self) -> Report:
        return self.report

    def risk_status(self) -> RiskStatus | None:
        return self.risk

    def tp_sl(self, symbol: str, pos_side: str) -> tuple[Decimal | None, Decimal | None]:
        return self.protections.get((symbol, pos_side), (None, None))

    def mark(self, symbol: str) -> Decimal | None:
        for pos in self._positions.values():
            if pos.symbol == symbol:
                return pos.mark_price
        return None

    async def today_history(self, day: date) -> DayHistory:
        """The real journal reader over ``journal_dir`` (empty without one); ``history_gate``
        lets a test publish live events while the read is still under way."""
        if self.history_gate is not None:
            await self.history_gate.wait()
        if self.journal_dir is None:
            return DayHistory(day)
        return await read_day_async(self.journal_dir, day)

    def history_pager(self, kind: HistoryKind, page_size: int = 200) -> HistoryPager:
        assert self.journal_dir is not None, "FakeEngine(journal_dir=...) for history"
        return HistoryPager(self.journal_dir, kind, page_size)


def two_positions() -> FakeEngine:
    """The engine double with a long BTC (10 ct) and a short ETH (30 ct at 3000, marked 2990.55)."""
    return FakeEngine([snapshot(BTC, PositionSide.LONG, "10"),
                       snapshot(ETH, PositionSide.SHORT, "30", "3000", "2990.55")])


def latency(ms: float) -> StreamStatus:
    return StreamStatus("private", LinkState.CONNECTED, ms, "latency", T0)


def screen_text(app: Any) -> str:
    """The visible screen as plain text (what a trader would read), for asserts and debugging."""
    update = app.screen._compositor.render_full_update()
    lines = ["".join(seg.text for strip in line for seg in strip) for line in update.strips]
    return "\n".join(line.replace("\xa0", " ").rstrip() for line in lines)


async def painted(app: Any, pilot: Any, text: str, tries: int = 200) -> None:
    """Wait until ``text`` is on the screen (a widget such as the footer composes after the
    first paint, later still on a loaded machine); the caller then asserts what it wants."""
    for _ in range(tries):
        if text in screen_text(app):
            return
        await pilot.pause(0.01)


async def footer(app: Any, pilot: Any, tries: int = 200) -> str:
    """The screen's last line once the footer shows its Quit key. The footer renders a few frames
    after mount (one pause is not enough on a loaded machine: the last line is still the panes'
    border), so it is waited for, with a bound; the caller asserts what the line holds."""
    line = ""
    for _ in range(tries):
        await pilot.pause(0.02)
        line = screen_text(app).splitlines()[-1]
        if "Quit" in line:
            break
    return line
