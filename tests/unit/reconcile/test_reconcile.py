"""Reconciliation on a real journal (written by Journal, read back by the reader) vs hand-built
exchange facts: the numbers are checked by hand below, so a match proves the comparison is exact
and each tampering proves the right position and field get named."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from core.events import FundingBill, PositionHistoryRecord, PositionPush
from core.ids import parse_position_id
from core.journal import Journal, read_fills, read_funding, read_trades
from core.model import (
    CloseReason,
    CloseResult,
    Fill,
    FundingPayment,
    OrderSide,
    Origin,
    PositionSide,
)
from core.reconcile.command import main as reconcile_main
from core.reconcile.compare import (
    ReconcileReport,
    compare,
    reconcile_with_venue,
    window_start,
)
from tests.helpers.reconcile_helpers import BTC, ETH, SOL, D, _settings, edit_cell

T0 = datetime(2024, 5, 1, 23, 0, 0, 123000, tzinfo=UTC)  # the life spans two UTC days
H = timedelta(hours=1)
BTC_ID = f"{BTC}#net#{1714604400123}"
ETH_ID = f"{ETH}#net#{1714622400123}"  # T0 + 5h


def _fill(fid: str, symbol: str, side: OrderSide, contracts: str, cs: str, price: str, fee: str,
          ts: datetime, pnl: str | None = None) -> Fill:
    return Fill(fill_id=fid, order_id="O" + fid, client_order_id="pdc" + fid, symbol=symbol,
                side=side, contracts=D(contracts), contract_size=D(cs), price=D(price),
                fee=D(fee), fee_ccy="USDT", ts=ts, origin=Origin.CONSOLE,
                fill_pnl=None if pnl is None else D(pnl))


# Long 1 BTC (100 x 0.01) at 60000, funding -6, close 0.4 at 61000, funding +3, close 0.6 at 62000.
FILLS = [
    _fill("f1", BTC, OrderSide.BUY, "100", "0.01", "60000", "30", T0, "0"),
    _fill("f2", BTC, OrderSide.SELL, "40", "0.01", "61000", "12.2", T0 + 2 * H, "400"),
    _fill("f3", BTC, OrderSide.SELL, "60", "0.01", "62000", "18.6", T0 + 4 * H, "1200"),
    _fill("f4", ETH, OrderSide.BUY, "10", "0.1", "3000", "0.15", T0 + 5 * H, "0"),
]
BILLS = [
    FundingBill("b1", BTC, D("-6"), D("100"), D("60000"), D("0.0001"), "USDT", T0 + H),
    FundingBill("b2", BTC, D("3"), D("60"), D("60000"), D("-0.00005"), "USDT", T0 + 3 * H),
]
CLOSES = [
    CloseResult(T0 + 2 * H, BTC, BTC_ID, PositionSide.LONG, CloseReason.MANUAL, D("1"), D("0.4"),
                D("0.6"), D("40"), D("0.01"), D("60000"), D("61000"), D("400"), D("42.2"), D("0"),
                D("-6"), T0, fill_ids=("f2",)),
    CloseResult(T0 + 4 * H, BTC, BTC_ID, PositionSide.LONG, CloseReason.TP, D("0.6"), D("0.6"),
                D("0"), D("60"), D("0.01"), D("60000"), D("62000"), D("1200"), D("18.6"), D("0"),
                D("3"), T0, fill_ids=("f3",)),
]
# realizedPnl = pnl + fee + fundingFee + liqPenalty = 1600 - 60.8 - 3 = 1536.2 = 351.8 + 1184.4
HISTORY = [
    PositionHistoryRecord(BTC, "P1", "net", "long", 2, D("60000"), D("61600"), D("100"), D("100"),
                          D("1600"), D("-60.8"), D("-3"), D("0"), D("1536.2"), T0 + timedelta(milliseconds=250), T0 + 4 * H),
]
OPEN = [
    PositionPush(ETH, "net", "P2", D("10"), D("3000"), D("3000"), D("0"), D("-0.15"), D("-0.15"),
                 D("0"), D("10"), "cross", None, T0 + 5 * H, T0 + 5 * H),
]


def write_journal(directory: Path) -> None:
    journal = Journal(directory)
    journal.open()
    for f in FILLS:
        assert journal.record_fill(f)
    for c in CLOSES:
        assert journal.record_close(c)
    for b in BILLS:
        assert journal.record_funding(FundingPayment(b.bill_id, b.symbol, BTC_ID, b.rate or D(0),
                                                     b.position_contracts,
                                                     b.position_contracts * D("0.01"),
                                                     b.mark_price, b.amount, b.ccy, b.ts))
    journal.close_sync()


@pytest.fixture
def jdir(tmp_path: Path) -> Path:
    write_journal(tmp_path)
    return tmp_path


def run(jdir: Path, *, history: list[PositionHistoryRecord] | None = None,
        fills: list[Fill] | None = None, bills: list[FundingBill] | None = None,
        open_positions: list[PositionPush] | None = None) -> ReconcileReport:
    return compare(read_trades(jdir), read_fills(jdir), read_funding(jdir),
                   HISTORY if history is None else history, FILLS if fills is None else fills,
                   BILLS if bills is None else bills, OPEN if open_positions is None else open_positions)


def test_everything_matches(jdir: Path) -> None:
    report = run(jdir)
    assert report.ok, "\n".join(report.lines())
    assert report.differences == []
    fields = {(r.position_id, r.field) for r in report.rows}
    assert {(BTC_ID, f) for f in ("closed contracts", "net pnl", "fee", "funding count",
                                  "funding sum", "fills")} <= fields
    assert {(ETH_ID, f) for f in ("net pnl", "fee", "open contracts", "fills",
                                  "funding count")} <= fields
    net = next(r for r in report.rows if r.position_id == BTC_ID and r.field == "net pnl")
    assert (net.journal, net.exchange) == ("1536.2", "1536.2")
    eth_fee = next(r for r in report.rows if r.position_id == ETH_ID and r.field == "fee")
    assert (eth_fee.journal, eth_fee.exchange) == ("0.15", "0.15")  # open: the push's own fee
    assert report.lines()[-1] == f"{len(report.rows)} checks over 2 positions: all match"


def test_tampered_net_pnl_names_position_and_field(jdir: Path) -> None:
    edit_cell(jdir / "trades_2024-05-02.csv", {"contracts_closed": "60"}, "net_pnl", "1184.5")
    report = run(jdir)
    assert not report.ok
    [diff] = report.differences
    assert (diff.symbol, diff.position_id, diff.field) == (BTC, BTC_ID, "net pnl")
    assert (diff.journal, diff.exchange) == ("1536.3", "1536.2")
    line = next(x for x in report.lines() if "DIFF" in x)
    assert "net#1714604400123" in line and "net pnl" in line
    assert report.lines()[-1].endswith("1 difference")


def test_fill_missing_from_journal(jdir: Path) -> None:
    path = jdir / "orders_2024-05-02.csv"
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(x for x in lines if ",f2," not in x))
    diffs = run(jdir).differences
    assert {(d.position_id, d.field) for d in diffs} == {(BTC_ID, "fills"), (BTC_ID, "fill f2")}
    f2 = next(d for d in diffs if d.field == "fill f2")
    assert (f2.journal, f2.exchange) == ("missing", "present")


def test_fill_missing_on_exchange_and_fill_outside_any_position(jdir: Path) -> None:
    stray = _fill("f9", BTC, OrderSide.BUY, "1", "0.01", "59000", "0.3", T0 - 2 * H, "0")
    diffs = run(jdir, fills=[f for f in FILLS if f.fill_id != "f4"] + [stray]).differences
    assert {(d.position_id, d.field, d.journal, d.exchange) for d in diffs} == {
        (ETH_ID, "fills", "1", "0"),
        (ETH_ID, "fill f4", "present", "missing"),
        ("-", "fill f9", "missing", "1 @ 59000"),
    }


def test_duplicate_fill_row(jdir: Path) -> None:
    path = jdir / "orders_2024-05-02.csv"
    dup = next(x for x in path.read_text().splitlines(keepends=True) if ",f3," in x)
    with open(path, "a") as f:
        f.write(dup)
    diffs = run(jdir).differences
    assert {(d.position_id, d.field, d.journal) for d in diffs} == {
        (BTC_ID, "fills", "4"), (BTC_ID, "fill f3", "2 rows")}


def test_funding_count_mismatch(jdir: Path) -> None:
    zero = FundingBill("b3", BTC, D("0"), D("60"), D("61000"), D("0"), "USDT", T0 + 3 * H + H / 2)
    diffs = run(jdir, bills=BILLS + [zero]).differences
    assert [(d.position_id, d.field, d.journal, d.exchange) for d in diffs] == [
        (BTC_ID, "funding count", "2", "3")]


def test_funding_sum_and_bill_outside_any_position(jdir: Path) -> None:
    changed = [BILLS[0], FundingBill("b2", BTC, D("3.01"), D("60"), D("60000"), None, "USDT",
                                     T0 + 3 * H)]
    late = FundingBill("b4", BTC, D("-1"), D("0"), D("60000"), None, "USDT", T0 + 4 * H + H / 2)
    diffs = run(jdir, bills=changed + [late]).differences
    assert {(d.position_id, d.field) for d in diffs} == {
        (BTC_ID, "funding sum"), ("-", "funding b4")}


def test_open_size_mismatch_and_exchange_only_position(jdir: Path) -> None:
    bigger = PositionPush(ETH, "net", "P2", D("12"), None, None, None, None, None, None, None,
                          "cross", None, T0 + 5 * H, T0 + 5 * H)
    sol = PositionPush("SOL/USDT:USDT", "net", "P3", D("-3"), None, None, None, None, None, None,
                       None, "cross", None, T0, T0)
    diffs = run(jdir, open_positions=[bigger, sol]).differences
    assert {(d.position_id, d.field, d.journal, d.exchange) for d in diffs} == {
        (ETH_ID, "open contracts", "10", "12"),
        (f"SOL/USDT:USDT#net#{1714604400123}", "open contracts", "0", "3"),
    }


def test_without_positions_history_the_exchange_side_comes_from_fills(jdir: Path) -> None:
    assert run(jdir, history=[]).ok
    edit_cell(jdir / "trades_2024-05-02.csv", {"contracts_closed": "60"}, "fee", "18.7")
    assert {(d.position_id, d.field) for d in run(jdir, history=[]).differences} == {
        (BTC_ID, "fee")}


def test_history_without_journal_life_is_a_difference(jdir: Path) -> None:
    other = PositionHistoryRecord(BTC, "P1", "net", "short", 2, D("1"), D("1"), D("5"), D("5"),
                                  D("0"), D("0"), D("0"), D("0"), D("0"), T0 - 3 * H, T0 - 2 * H)
    diffs = run(jdir, history=HISTORY + [other]).differences
    assert [(d.position_id, d.field, d.journal) for d in diffs] == [
        (f"{BTC}#net#{1714604400123 - 3 * 3600 * 1000}", "closed contracts", "missing")]


def test_open_life_with_partial_close_carries_pending_fee_and_funding(tmp_path: Path) -> None:
    """After the first close only: realizedPnl already holds the funding paid since (OKX books
    it at once) while the journal holds it as pending until the next close row."""
    journal = Journal(tmp_path)
    for f in FILLS[:2]:
        journal.record_fill(f)
    journal.record_close(CLOSES[0])
    for b in BILLS:
        journal.record_funding(FundingPayment(b.bill_id, BTC, BTC_ID, D(0), b.position_contracts,
                                              D(0), b.mark_price, b.amount, "USDT", b.ts))
    journal.close_sync()
    partial = PositionHistoryRecord(BTC, "P1", "net", "long", 1, D("60000"), D("61000"),
                                    D("100"), D("40"), D("400"), D("-42.2"), D("-3"), D("0"),
                                    D("354.8"), T0, T0 + 3 * H)
    still = PositionPush(BTC, "net", "P1", D("60"), None, None, None, None, None, None, None,
                         "cross", None, T0, T0 + 3 * H)
    report = compare(read_trades(tmp_path), read_fills(tmp_path), read_funding(tmp_path),
                     [partial], FILLS[:2], BILLS, [still])
    assert report.ok, "\n".join(report.lines())
    assert {r.field for r in report.rows} >= {"net pnl", "open contracts"}


def test_position_id_parsing() -> None:
    symbol, pos_side, opened = parse_position_id(BTC_ID)
    assert (symbol, pos_side, opened) == (BTC, "net", T0)


class FakeVenue:
    """Exchange history as a venue returns it, recording the ``since`` each fetch was given."""

    def __init__(self, fills: list[Fill], history: list[PositionHistoryRecord],
                 bills: list[FundingBill], positions: list[PositionPush]) -> None:
        self.data = (fills, history, bills, positions)
        self.since: list[datetime | None] = []

    async def fetch_positions(self) -> list[PositionPush]:
        return self.data[3]

    async def fetch_fills(self, since: datetime | None) -> list[Fill]:
        self.since.append(since)
        return self.data[0]

    async def fetch_positions_history(self, since: datetime | None) -> list[PositionHistoryRecord]:
        self.since.append(since)
        return self.data[1]

    async def fetch_funding_bills(self, since: datetime | None) -> list[FundingBill]:
        self.since.append(since)
        return self.data[2]


OLD = (  # a position closed on the exchange a day before the journal was started
    _fill("old1", BTC, OrderSide.BUY, "1", "0.01", "50000", "0.25", T0 - 30 * H, "0"),
    PositionHistoryRecord(BTC, "P0", "net", "long", 2, D("50000"), D("50000"), D("1"), D("1"),
                          D("0"), D("-0.5"), D("0"), D("0"), D("-0.5"), T0 - 30 * H, T0 - 29 * H),
    FundingBill("b0", BTC, D("-1"), D("1"), D("50000"), None, "USDT", T0 - 29 * H - H / 2),
)


async def test_with_venue_ignores_history_from_before_the_journal(jdir: Path) -> None:
    venue = FakeVenue([OLD[0], *FILLS], [OLD[1], *HISTORY], [OLD[2], *BILLS], OPEN)
    report = await reconcile_with_venue(venue, jdir)
    assert report.ok, "\n".join(report.lines())
    assert venue.since == [T0, T0, T0]


async def test_with_venue_since_inside_a_life_starts_at_its_opening(jdir: Path) -> None:
    venue = FakeVenue(FILLS, HISTORY, BILLS, OPEN)
    assert (await reconcile_with_venue(venue, jdir, since=T0 + 3 * H)).ok
    assert venue.since == [T0, T0, T0]  # the BTC life (closed at T0+4h) opened at T0


async def test_with_venue_since_after_closed_lives_checks_only_what_follows(jdir: Path) -> None:
    venue = FakeVenue(FILLS, HISTORY, BILLS, OPEN)
    report = await reconcile_with_venue(venue, jdir, since=T0 + 4 * H + H / 2)
    assert report.ok and {r.position_id for r in report.rows} == {ETH_ID}
    edit_cell(jdir / "orders_2024-05-02.csv", {"fill_id": "f4"}, "fill_id", "f4x")
    diffs = (await reconcile_with_venue(venue, jdir, since=T0 + 4 * H + H / 2)).differences
    assert {d.field for d in diffs} == {"fills", "fill f4", "fill f4x"}


def test_window_start_reaches_back_to_an_open_exchange_position() -> None:
    early = PositionPush(ETH, "net", "P2", D("10"), None, None, None, None, None, None, None,
                         "cross", None, T0 - 48 * H, T0)
    assert window_start([], [], [], T0, [early]) == T0 - 48 * H
    assert window_start([], [], [], None) is None


# ---------------------------------------------------------------- end to end: the simulator


def test_main_exit_2_sim_without_a_saved_or_reachable_exchange(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert reconcile_main(_settings(None, tmp_path)) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "[exchange] url" in err
    assert f"no embedded exchange saved in {tmp_path / 'sim-state.json'}" in err


def test_open_position_realized_pnl_is_checked_against_the_journal(jdir: Path) -> None:
    [eth] = OPEN
    off = PositionPush(ETH, "net", "P2", D("10"), None, None, None, D("-0.16"), D("-0.15"), None,
                       None, "cross", None, eth.created_at, eth.ts)
    assert [(d.position_id, d.field, d.journal, d.exchange) for d in
            run(jdir, open_positions=[off]).differences] == [(ETH_ID, "net pnl", "-0.15", "-0.16")]


# ---------------------------------------------------------------- neighbouring lives, a moving account

MS = timedelta(milliseconds=1)
A_ID = f"{SOL}#net#{1714604400123}"  # T0


def _neighbour_lives(directory: Path) -> tuple[list[Fill], list[PositionHistoryRecord], PositionPush]:
    """SOL: life A opened at T0 and closed 300 ms later; life B opened 400 ms after A, still open
    (what the demo scalper does every few seconds)."""
    a_open = _fill("a1", SOL, OrderSide.BUY, "10", "1", "100", "0.05", T0, "0")
    a_close = _fill("a2", SOL, OrderSide.SELL, "10", "1", "101", "0.0505", T0 + 300 * MS, "10")
    b_open = _fill("b1", SOL, OrderSide.BUY, "20", "1", "102", "0.102", T0 + 400 * MS, "0")
    journal = Journal(directory)
    journal.open()
    for f in (a_open, a_close, b_open):
        assert journal.record_fill(f)
    assert journal.record_close(CloseResult(
        T0 + 300 * MS, SOL, A_ID, PositionSide.LONG, CloseReason.MANUAL, D("10"), D("10"), D("0"),
        D("10"), D("1"), D("100"), D("101"), D("10"), D("0.1005"), D("0"), D("0"), T0,
        fill_ids=("a2",)))
    journal.close_sync()
    history = [PositionHistoryRecord(SOL, "PA", "net", "long", 2, D("100"), D("101"), D("10"),
                                     D("10"), D("10"), D("-0.1005"), D("0"), D("0"), D("9.8995"),
                                     T0, T0 + 300 * MS)]
    b_push = PositionPush(SOL, "net", "PB", D("20"), D("102"), D("102"), D("0"), D("-0.102"),
                          D("-0.102"), D("0"), D("10"), "cross", None, T0 + 400 * MS,
                          T0 + 400 * MS)
    # The exchange stamps A's closing fill 200 ms later than the push the journal took it from,
    # i.e. after B opened: by time alone it would land in B's window.
    late = Fill(**{**{s: getattr(a_close, s) for s in Fill.__dataclass_fields__},
                   "ts": T0 + 500 * MS})
    return [a_open, late, b_open], history, b_push


def test_exchange_fill_goes_to_the_life_that_journaled_it(tmp_path: Path) -> None:
    fills, history, b_push = _neighbour_lives(tmp_path)
    report = compare(read_trades(tmp_path), read_fills(tmp_path), read_funding(tmp_path),
                     history, fills, [], [b_push])
    assert report.ok, "\n".join(report.lines())
    counts = {r.position_id: (r.journal, r.exchange) for r in report.rows if r.field == "fills"}
    assert counts == {A_ID: ("2", "2"), f"{SOL}#net#{1714604400523}": ("1", "1")}


class MovingVenue(FakeVenue):
    """The ETH position closes on the exchange (a TP) after reconcile read the journal; the
    journal gets its close row only when ``settle`` runs again (the engine catching up)."""

    def __init__(self, directory: Path) -> None:
        close_fill = _fill("f5", ETH, OrderSide.SELL, "10", "0.1", "3100", "0.155", T0 + 6 * H, "100")
        closed = PositionHistoryRecord(ETH, "P2", "net", "long", 2, D("3000"), D("3100"), D("10"),
                                       D("10"), D("100"), D("-0.305"), D("0"), D("0"),
                                       D("99.695"), T0 + 5 * H, T0 + 6 * H)
        super().__init__([*FILLS, close_fill], [*HISTORY, closed], BILLS, OPEN)
        self.directory, self.close_fill, self.position_calls, self.settles = directory, close_fill, 0, 0

    async def fetch_positions(self) -> list[PositionPush]:
        self.position_calls += 1
        return OPEN if self.position_calls == 1 else []

    async def settle(self) -> None:
        self.settles += 1
        if self.settles == 2:  # the engine has now journaled the TP's fill and close row
            journal = Journal(self.directory)
            journal.open()
            assert journal.record_fill(self.close_fill)
            assert journal.record_close(CloseResult(
                T0 + 6 * H, ETH, ETH_ID, PositionSide.LONG, CloseReason.TP, D("1"), D("1"),
                D("0"), D("10"), D("0.1"), D("3000"), D("3100"), D("100"), D("0.305"), D("0"),
                D("0"), T0 + 5 * H, fill_ids=("f5",)))
            journal.close_sync()


async def test_with_venue_compares_again_when_the_account_moved_while_read(jdir: Path) -> None:
    venue = MovingVenue(jdir)
    report = await reconcile_with_venue(venue, jdir, settle=venue.settle, pause_s=0)
    assert report.ok and not report.moving, "\n".join(report.lines())
    assert venue.settles == 2
    closed = next(r for r in report.rows if r.position_id == ETH_ID and r.field == "closed contracts")
    assert (closed.journal, closed.exchange) == ("10", "10")


async def test_with_venue_says_when_the_account_never_stood_still(jdir: Path) -> None:
    class Restless(MovingVenue):
        async def settle(self) -> None:  # the engine never catches up
            self.settles += 1

        async def fetch_positions(self) -> list[PositionPush]:
            self.position_calls += 1
            return OPEN if self.position_calls % 2 else []

    venue = Restless(jdir)
    report = await reconcile_with_venue(venue, jdir, settle=venue.settle, pause_s=0)
    assert not report.ok and report.moving and venue.settles == 3
    assert "kept changing while it was read" in report.lines()[-1]


def test_a_missing_history_record_does_not_shift_the_next_lives(tmp_path: Path) -> None:
    """Three SOL lives 2 s apart (inside MATCH_TOLERANCE of each other); the exchange's record of
    the first is missing. The others must still be held against their own records (exact cTime),
    and the first against its fills, instead of each taking its neighbour's record."""
    journal = Journal(tmp_path)
    journal.open()
    fills: list[Fill] = []
    history: list[PositionHistoryRecord] = []
    for i in range(3):
        opened = T0 + i * 2000 * MS
        px = D(100 + i)
        o = _fill(f"o{i}", SOL, OrderSide.BUY, "1", "1", str(px), "0.05", opened, "0")
        c = _fill(f"c{i}", SOL, OrderSide.SELL, "1", "1", str(px + 1 + i), "0.05", opened + 500 * MS,
                  str(1 + i))
        fills += [o, c]
        assert journal.record_fill(o) and journal.record_fill(c)
        assert journal.record_close(CloseResult(
            opened + 500 * MS, SOL, f"{SOL}#net#{1714604400123 + i * 2000}", PositionSide.LONG,
            CloseReason.MANUAL, D("1"), D("1"), D("0"), D("1"), D("1"), px, px + 1 + i, D(1 + i),
            D("0.1"), D("0"), D("0"), opened, fill_ids=(f"c{i}",)))
        history.append(PositionHistoryRecord(SOL, "PS", "net", "long", 2, px, px + 1 + i, D("1"),
                                             D("1"), D(1 + i), D("-0.1"), D("0"), D("0"),
                                             D(1 + i) - D("0.1"), opened, opened + 500 * MS))
    journal.close_sync()
    report = compare(read_trades(tmp_path), read_fills(tmp_path), read_funding(tmp_path),
                     history[1:], fills, [], [])
    assert report.ok, "\n".join(report.lines())
    nets = {r.position_id: r.exchange for r in report.rows if r.field == "net pnl"}
    assert list(nets.values()) == ["0.9", "1.9", "2.9"]  # each life its own numbers


def test_lives_opened_in_one_millisecond_take_one_record_each(tmp_path: Path) -> None:
    """SOL opened 1, closed it and opened 2 within one millisecond; the second life closed a
    second later. One posId and one cTime for both records (net mode): still two lives, each held
    against its own record and its own fills, not one life against their sum."""
    first_id, second_id = f"{SOL}#net#1714604400123", f"{SOL}#net#1714604400123.2"
    o1 = _fill("o1", SOL, OrderSide.BUY, "1", "1", "100", "0.05", T0, "0")
    c1 = _fill("c1", SOL, OrderSide.SELL, "1", "1", "101", "0.05", T0, "1")
    o2 = _fill("o2", SOL, OrderSide.BUY, "2", "1", "100", "0.05", T0, "0")
    c2 = _fill("c2", SOL, OrderSide.SELL, "2", "1", "103", "0.05", T0 + 1000 * MS, "6")
    journal = Journal(tmp_path)
    journal.open()
    for f in (o1, c1, o2, c2):
        assert journal.record_fill(f)
    assert journal.record_close(CloseResult(
        T0, SOL, first_id, PositionSide.LONG, CloseReason.MANUAL, D("1"), D("1"), D("0"), D("1"),
        D("1"), D("100"), D("101"), D("1"), D("0.1"), D("0"), D("0"), T0, fill_ids=("c1",)))
    assert journal.record_close(CloseResult(
        T0 + 1000 * MS, SOL, second_id, PositionSide.LONG, CloseReason.MANUAL, D("2"), D("2"),
        D("0"), D("2"), D("1"), D("100"), D("103"), D("6"), D("0.1"), D("0"), D("0"), T0,
        fill_ids=("c2",)))
    journal.close_sync()
    history = [  # oldest update first, as the venue returns them
        PositionHistoryRecord(SOL, "PS", "net", "long", 2, D("100"), D("101"), D("1"), D("1"),
                              D("1"), D("-0.1"), D("0"), D("0"), D("0.9"), T0, T0),
        PositionHistoryRecord(SOL, "PS", "net", "long", 2, D("100"), D("103"), D("2"), D("2"),
                              D("6"), D("-0.1"), D("0"), D("0"), D("5.9"), T0, T0 + 1000 * MS),
    ]
    report = compare(read_trades(tmp_path), read_fills(tmp_path), read_funding(tmp_path),
                     history, [o1, c1, o2, c2], [], [])
    assert report.ok, "\n".join(report.lines())
    got = {(r.position_id, r.field): r.exchange for r in report.rows}
    assert (got[(first_id, "closed contracts")], got[(second_id, "closed contracts")]) == ("1", "2")
    assert (got[(first_id, "net pnl")], got[(second_id, "net pnl")]) == ("0.9", "5.9")
    assert (got[(first_id, "fills")], got[(second_id, "fills")]) == ("2", "2")
    # one record missing: the other life keeps its own record, the missing one is a difference
    short = compare(read_trades(tmp_path), read_fills(tmp_path), read_funding(tmp_path),
                    history[:1], [o1, c1, o2, c2], [], [])
    nets = {r.position_id: (r.exchange, r.ok) for r in short.rows if r.field == "net pnl"}
    assert nets[first_id] == ("0.9", True) and nets[second_id][0] != "0.9"


def test_position_ids_with_a_sequence_parse() -> None:
    assert parse_position_id(f"{BTC_ID}.2") == (BTC, "net", T0)
    with pytest.raises(ValueError):
        parse_position_id(f"{BTC_ID}.x")


# ---------------------------------------------------------------- bounded by the exchange's history


class WindowedVenue(FakeVenue):
    """A venue whose history endpoints answer back to ``horizon`` only (OKX: three months)."""

    def __init__(self, horizon: datetime) -> None:
        super().__init__(FILLS, HISTORY, BILLS, OPEN)
        self.history_window = datetime.now(UTC) - horizon


def _garbage_day_files(directory: Path, day: str) -> None:
    """Day files no reader can take: reading one raises JournalError naming it."""
    for family in ("orders", "trades", "funding"):
        path = directory / f"{family}_{day}.csv"
        path.write_text("not,a,journal\nx,y,z\n")
        path.chmod(0o600)


@pytest.mark.parametrize(("horizon", "since"), [
    (T0 - 10 * 24 * H, None),  # every life inside the window: read from the horizon on
    (T0 + 3 * H, T0 + 3 * H),  # the BTC life straddles the horizon: back to its opening, no further
])
async def test_with_venue_reads_no_day_file_older_than_the_exchange_history(
        jdir: Path, horizon: datetime, since: datetime | None) -> None:
    from core.journal import JournalError

    _garbage_day_files(jdir, "2024-01-15")  # months before the horizon
    with pytest.raises(JournalError, match="2024-01-15"):  # read, it would be refused
        await reconcile_with_venue(FakeVenue(FILLS, HISTORY, BILLS, OPEN), jdir)
    venue = WindowedVenue(horizon)
    report = await reconcile_with_venue(venue, jdir, since=since)
    assert report.ok, "\n".join(report.lines())
    assert {(r.position_id, r.field) for r in report.rows} >= {(BTC_ID, "net pnl"),
                                                               (ETH_ID, "open contracts")}
    low = min(T0, horizon - timedelta(minutes=5))
    assert all(s is not None and low <= s <= T0 for s in venue.since)


def test_read_window_opens_only_the_files_the_window_needs(jdir: Path) -> None:
    from core.reconcile.compare import _WindowReader, read_window

    _garbage_day_files(jdir, "2024-01-15")
    reader = _WindowReader(jdir)
    trades, fills, funding, start = read_window(jdir, T0 + 3 * H, OPEN, reader)
    assert start == T0  # the BTC life active at T0+3h opened at T0
    assert {r["fill_id"] for r in fills} == {"f1", "f2", "f3", "f4"}
    assert len(trades) == 2 and len(funding) == 2
    assert sorted(p.name for p in reader.opened) == sorted(
        f"{fam}_{d}.csv" for fam in ("orders", "trades", "funding")
        for d in ("2024-05-01", "2024-05-02") if (jdir / f"{fam}_{d}.csv").exists())
