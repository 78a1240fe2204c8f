"""core/confirm/closes.py: matching a life to its positions-history record, and the confirmation policy."""
from __future__ import annotations

import asyncio
import dataclasses
from datetime import datetime, timedelta
from decimal import Decimal as D
from pathlib import Path

import pytest

from core.confirm.closes import (
    HISTORY_SINCE_SLACK,
    CloseConfirmer,
    LifeTotals,
    PendingClose,
    confirm_close,
    reason_from_close_type,
)
from core.confirm.history_match import HistoryMatcher, match_history
from core.confirm.unconfirmed import UnconfirmedClose, load, save
from core.events import PositionHistoryRecord
from core.model import CloseReason, CloseResult, PositionSide, RowSource
from tests.helpers.confirm_helpers import PID, SYM, T0, close
from tests.helpers.engine_helpers import wait_for
from tests.helpers.fault_helpers import LogCapture

pytestmark = pytest.mark.timeout(20)


def rec(*, closed: str, pnl: str, fee: str, funding: str = "0", penalty: str = "0",
        created: datetime = T0, direction: str = "long", close_type: int = 1,
        pos_side: str = "net") -> PositionHistoryRecord:
    realized = D(pnl) + D(fee) + D(funding) + D(penalty)
    return PositionHistoryRecord(
        symbol=SYM, position_key="77", pos_side=pos_side, direction=direction,
        close_type=close_type, open_avg_price=D("60000"), close_avg_price=D("61000"),
        open_max_contracts=D("100"), closed_contracts=D(closed), pnl=D(pnl), fee=D(fee),
        funding_fee=D(funding), liq_penalty=D(penalty), realized_pnl=realized, created_at=created,
        updated_at=created + timedelta(minutes=5))


def test_match_history_picks_the_life_by_opening_time_and_direction() -> None:
    older = rec(closed="10", pnl="1", fee="-1", created=T0 - timedelta(hours=1))
    short = rec(closed="10", pnl="1", fee="-1", created=T0, direction="short")
    mine = rec(closed="40", pnl="400", fee="-42.2", created=T0 + timedelta(milliseconds=3))
    hedge = rec(closed="40", pnl="400", fee="-42.2", pos_side="long")
    got = match_history([older, short, mine, hedge], SYM, "net", PositionSide.LONG, T0)
    assert got is mine
    assert match_history([older], SYM, "net", PositionSide.LONG, T0) is None


def test_reason_from_close_type() -> None:
    assert reason_from_close_type(3) is CloseReason.LIQUIDATION
    assert reason_from_close_type(4) is CloseReason.LIQUIDATION
    assert reason_from_close_type(6) is CloseReason.ADL
    assert reason_from_close_type(2) is CloseReason.EXTERNAL


def test_confirm_keeps_an_agreeing_row_and_replaces_a_differing_one() -> None:
    row = close(contracts="40", before="1", gross="400", fee="42.2")
    same = confirm_close(row, LifeTotals(), rec(closed="40", pnl="400", fee="-42.2"))
    assert same is row and same.source is RowSource.LEDGER
    # the exchange charged a fee the ledger never saw and booked funding it did not attribute
    fixed = confirm_close(row, LifeTotals(), rec(closed="40", pnl="400", fee="-42.7", funding="-3.1"))
    assert fixed.source is RowSource.EXCHANGE
    assert (fixed.gross_pnl, fixed.fee, fixed.funding) == (D("400"), D("42.7"), D("-3.1"))
    assert fixed.net_pnl == D("400") - D("42.7") - D("3.1")
    # a later row is the difference to the rows already written
    totals = LifeTotals().add(fixed)
    last = close(contracts="60", before="0.6", gross="1500", fee="18.75", fill="f2")
    final = confirm_close(last, totals, rec(closed="100", pnl="1900.5", fee="-61.45",
                                            funding="-3.1", penalty="-1.5", close_type=2))
    assert (final.gross_pnl, final.fee, final.liq_penalty, final.funding) == (
        D("1500.5"), D("18.75"), D("1.5"), D("0"))
    assert totals.net_pnl + final.net_pnl == D("1900.5") - D("61.45") - D("3.1") - D("1.5")


class FakeHistory:
    """positions-history that the test scripts: a list of answers, one per call."""

    def __init__(self, answers: list[list[PositionHistoryRecord] | Exception]) -> None:
        self.answers = answers
        self.calls = 0

    async def __call__(self, since: datetime) -> list[PositionHistoryRecord]:
        # every record updated since shortly before the close (a record's uTime is at or after
        # the closes it includes), not since the life's opening
        assert since <= T0 + timedelta(minutes=1) - HISTORY_SINCE_SLACK
        answer = self.answers[min(self.calls, len(self.answers) - 1)]
        self.calls += 1
        if isinstance(answer, Exception):
            raise answer
        return answer


async def _run(fetch: FakeHistory, pendings: list[PendingClose]) -> list[CloseResult]:
    out: list[CloseResult] = []
    conf = CloseConfirmer(fetch, out.append, delays=(0, 0.01, 0.01, 0.01))
    conf.start()
    for p in pendings:
        conf.submit(p)
    await conf.drain(5)
    return out


async def test_confirmer_waits_for_the_exchange_to_catch_up() -> None:
    fetch = FakeHistory([[], [rec(closed="0", pnl="0", fee="-30")],
                         [rec(closed="100", pnl="1000", fee="-61", funding="-2", close_type=2)]])
    row = close(contracts="100", before="1", gross="1000", fee="60")
    (out,) = await _run(fetch, [PendingClose(row, "net", lambda: False)])
    assert fetch.calls == 3 and out.source is RowSource.EXCHANGE
    assert out.net_pnl == D("1000") - D("61") - D("2")


async def test_confirmer_partial_row_stays_ledger_when_the_record_already_holds_later_closes() -> None:
    both = rec(closed="100", pnl="1000", fee="-61", close_type=2)
    fetch = FakeHistory([[both]])
    first = close(contracts="40", before="1", gross="400", fee="42.1")  # exchange would differ
    second = close(contracts="60", before="0.6", gross="600", fee="18", fill="f2")
    out = await _run(fetch, [PendingClose(first, "net", lambda: False),
                             PendingClose(second, "net", lambda: False)])
    assert out[0] is first  # the record already includes the second close: not this row alone
    assert out[1].source is RowSource.EXCHANGE
    assert out[0].net_pnl + out[1].net_pnl == D("1000") - D("61")


async def test_confirmer_partial_row_stays_ledger_after_a_later_increase() -> None:
    fetch = FakeHistory([[rec(closed="40", pnl="400", fee="-50")]])  # includes the increase's fee
    row = close(contracts="40", before="1", gross="400", fee="42.2")
    (out,) = await _run(fetch, [PendingClose(row, "net", lambda: True)])
    assert out is row


async def test_confirmer_writes_the_ledger_row_when_the_exchange_is_unreachable() -> None:
    fetch = FakeHistory([ConnectionError("down")])
    row = close(contracts="100", before="1", gross="1000", fee="60")
    (out,) = await _run(fetch, [PendingClose(row, "net", lambda: False)])
    assert out is row and fetch.calls == 4


async def test_confirmer_drain_writes_waiting_rows_from_the_ledger_and_lists_them(
        tmp_path: Path) -> None:
    """At stop nothing is left behind: the waiting row is written (ledger numbers, once) and
    listed beside the journal, crash-safely, for the next start's check."""
    gate = asyncio.Event()

    async def slow(since: datetime) -> list[PositionHistoryRecord]:
        await gate.wait()
        return []

    out: list[CloseResult] = []
    sidecar = tmp_path / "unconfirmed_closes.json"
    conf = CloseConfirmer(slow, out.append, sidecar=sidecar)
    conf.start()
    row = close(contracts="100", before="1", gross="1", fee="1")
    conf.submit(PendingClose(row, "net", lambda: False))
    await asyncio.sleep(0.05)
    assert await conf.drain(0.1) == 1
    assert out == [row] and out[0].source is RowSource.LEDGER and conf.idle
    [listed] = load(sidecar)
    assert (listed.close_id, listed.position_id, listed.full) == (row.close_key, PID, True)
    assert sidecar.stat().st_mode & 0o777 == 0o600
    assert [p.name for p in tmp_path.iterdir()] == [sidecar.name]  # no temp file left
    assert await conf.drain(0.1) == 0 and out == [row]  # a second stop writes nothing twice


async def test_next_start_checks_the_listed_lives_and_names_a_difference(
        tmp_path: Path, logs: LogCapture) -> None:
    sidecar = tmp_path / "unconfirmed_closes.json"
    other = f"{SYM}#net#{int((T0 + timedelta(hours=1)).timestamp() * 1000)}"
    row = close(contracts="100", before="1", gross="1000", fee="60")
    row2 = dataclasses.replace(row, position_id=other, opened_at=T0 + timedelta(hours=1),
                               fill_ids=("f9",))
    save(sidecar, [UnconfirmedClose.of(row, "net"), UnconfirmedClose.of(row2, "net")])
    records = [rec(closed="100", pnl="1000", fee="-60", close_type=2),  # agrees
               rec(closed="100", pnl="1000", fee="-61.5", close_type=2,  # the exchange's fee differs
                   created=T0 + timedelta(hours=1))]

    async def fetch(since: datetime) -> list[PositionHistoryRecord]:
        return records

    conf = CloseConfirmer(fetch, lambda c: None, sidecar=sidecar)
    conf.seed(PID, LifeTotals.of_rows([row]))  # the rows the journal holds (replay)
    conf.seed(other, LifeTotals.of_rows([row2]))
    conf.start()
    await wait_for(lambda: not sidecar.exists(), 5, "the list to be checked and removed")
    await conf.cancel()
    assert logs.one("CLOSE CHECKED", PID).level == "INFO"
    line = logs.one("CLOSE DIFFERS", other)
    assert line.level == "WARNING" and "fee 60 vs 61.5" in line.message
    assert "realizedPnl 938.5" in line.message


async def test_one_fetch_confirms_every_waiting_life() -> None:
    """A burst: many lives closed at once are confirmed by one positions-history fetch, and the
    rows of one life still come out in order, each a difference to the ones before it."""
    lives = [T0 + timedelta(seconds=10 * i) for i in range(50)]
    records = [rec(closed="100", pnl="1000", fee="-61", close_type=2, created=t) for t in lives]
    fetch = FakeHistory([records])
    out: list[CloseResult] = []
    conf = CloseConfirmer(fetch, out.append)
    for t in lives:
        pid = f"{SYM}#net#{int(t.timestamp() * 1000)}"
        first = dataclasses.replace(close(contracts="40", before="1", gross="400", fee="42"),
                                    position_id=pid, opened_at=t)
        last = dataclasses.replace(close(contracts="60", before="0.6", gross="600", fee="18",
                                         fill="f2"), position_id=pid, opened_at=t)
        conf.submit(PendingClose(first, "net", lambda: False))
        conf.submit(PendingClose(last, "net", lambda: False))
    conf.start()
    await wait_for(lambda: conf.idle, 5, "every row written")
    await conf.cancel()
    assert fetch.calls == 1 and len(out) == 100
    for i in range(0, 100, 2):
        assert out[i].position_id == out[i + 1].position_id
        assert out[i].source is RowSource.LEDGER  # the record already holds the later close
        assert out[i].net_pnl + out[i + 1].net_pnl == D("1000") - D("61")


async def test_a_lagging_life_does_not_hold_up_the_others() -> None:
    """One life's record is late: the other lives' rows are written at once; the late one after
    its retries, from the ledger."""
    t1 = T0 + timedelta(minutes=10)
    pid1 = f"{SYM}#net#{int(t1.timestamp() * 1000)}"
    fetch = FakeHistory([[rec(closed="100", pnl="1000", fee="-61", close_type=2, created=t1)]])
    out: list[CloseResult] = []
    conf = CloseConfirmer(fetch, out.append, delays=(0, 0.05, 0.05), min_gap=0.01)
    late = close(contracts="100", before="1", gross="1000", fee="60")  # no record ever
    ok = dataclasses.replace(late, position_id=pid1, opened_at=t1, fill_ids=("f5",))
    conf.submit(PendingClose(late, "net", lambda: False))
    conf.submit(PendingClose(ok, "net", lambda: False))
    conf.start()
    await wait_for(lambda: len(out) == 1, 5, "the matched life's row")
    assert out[0].position_id == pid1 and out[0].source is RowSource.EXCHANGE
    await wait_for(lambda: conf.idle, 5, "the late life's row")
    await conf.cancel()
    assert out[1] is late and fetch.calls == 3


async def test_backlog_is_bounded() -> None:
    """Beyond ``max_pending`` waiting closes the oldest are written from the ledger at once."""
    out: list[CloseResult] = []
    conf = CloseConfirmer(FakeHistory([[]]), out.append, max_pending=3)  # never started
    rows = [dataclasses.replace(close(contracts="100", before="1", gross="1", fee="1"),
                                position_id=f"{PID}{i}", fill_ids=(f"f{i}",)) for i in range(5)]
    for r in rows:
        conf.submit(PendingClose(r, "net", lambda: False))
    assert out == rows[:2] and conf.pending == 3


def _life_close(pid: str, *, contracts: str, gross: str, fee: str, fill: str,
                closed_at: datetime) -> CloseResult:
    row = close(contracts=contracts, before=str(D(contracts) * D("0.01")), gross=gross, fee=fee,
                fill=fill)
    return dataclasses.replace(row, position_id=pid, closed_at=closed_at)


@pytest.mark.parametrize("same_update", [False, True])
async def test_lives_opened_in_one_millisecond_each_take_their_own_record(
        same_update: bool) -> None:
    """Open 1, close it, open 2 within one millisecond (one posId for both, as on OKX): two
    records with one cTime are two lives. Each life is confirmed by its own record, in the order
    they happened (uTime, else the listing order), never by the other's or by their sum."""
    second_close = T0 if same_update else T0 + timedelta(minutes=1)
    first = dataclasses.replace(rec(closed="1", pnl="0.1", fee="-0.61", close_type=2),
                                updated_at=T0)
    second = dataclasses.replace(rec(closed="2", pnl="0.4", fee="-1.22", close_type=2),
                                 updated_at=second_close)
    fetch = FakeHistory([[first, second]])
    out: list[CloseResult] = []
    conf = CloseConfirmer(fetch, out.append, delays=(0, 0.01, 0.01))
    pid2 = f"{PID}.2"
    conf.submit(PendingClose(_life_close(pid2, contracts="2", gross="0.4", fee="1.2", fill="f4",
                                         closed_at=second_close), "net", lambda: False))
    conf.submit(PendingClose(_life_close(PID, contracts="1", gross="0.1", fee="0.6", fill="f2",
                                         closed_at=T0), "net", lambda: False))
    conf.start()
    await wait_for(lambda: conf.idle, 5, "both rows")
    await conf.cancel()
    rows = {r.position_id: r for r in out}
    assert fetch.calls == 1 and set(rows) == {PID, pid2}
    assert (rows[PID].contracts_closed, rows[PID].fee, rows[PID].source) == (
        D("1"), D("0.61"), RowSource.EXCHANGE)
    assert (rows[pid2].contracts_closed, rows[pid2].fee, rows[pid2].source) == (
        D("2"), D("1.22"), RowSource.EXCHANGE)


def test_match_history_gives_each_life_of_a_millisecond_its_own_record() -> None:
    first = dataclasses.replace(rec(closed="1", pnl="1", fee="-1"), updated_at=T0)
    flip = dataclasses.replace(rec(closed="3", pnl="2", fee="-2", direction="short"),
                               updated_at=T0 + timedelta(seconds=1))
    records = [first, flip]
    assert match_history(records, SYM, "net", PositionSide.LONG, T0) is first
    assert match_history(records, SYM, "net", PositionSide.SHORT, T0, seq=2) is flip
    assert match_history(records, SYM, "net", PositionSide.LONG, T0, seq=3) is None  # not listed yet
    index = HistoryMatcher(records)
    assert index.match(SYM, "net", PositionSide.LONG, T0, 1, owner=PID) is first
    assert index.match(SYM, "net", PositionSide.LONG, T0, 1, owner=PID) is first  # same life again
    assert index.match(SYM, "net", PositionSide.LONG, T0, 1, owner=f"{PID}.9") is None  # taken


async def test_with_confirmation_off_a_close_is_written_without_the_fetch_gap() -> None:
    """The round gap spaces positions-history fetches (the exchange's rate limit); with
    confirmation off no round fetches, so a close arriving right after a round is written at once
    instead of a gap later (a 0.2 s gap held every close row, and timed the stream benchmark)."""
    fetch = FakeHistory([])
    out: list[CloseResult] = []
    conf = CloseConfirmer(fetch, out.append, enabled=False, min_gap=5.0)
    conf.start()
    try:
        conf.submit(PendingClose(close(contracts="40", before="1", gross="400", fee="42"), "net", lambda: False))
        await wait_for(lambda: len(out) == 1, 2, "the first row")
        second = close(contracts="60", before="0.6", gross="600", fee="18", fill="f2")
        conf.submit(PendingClose(second, "net", lambda: False))
        await wait_for(lambda: len(out) == 2, 1, "the second row, well within the 5 s gap")
    finally:
        await conf.cancel()
    assert fetch.calls == 0
    assert [c.fill_ids for c in out] == [("f1",), ("f2",)]
