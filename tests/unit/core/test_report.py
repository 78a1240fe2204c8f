"""`perpdesk report` on a small real journal; every expected number is worked out by hand."""
from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace

import pytest

from core.accounting.report import TOTAL, ReportRow, build_report, format_report, main, select
from core.journal import Journal
from core.model import (
    CloseReason,
    CloseResult,
    Fill,
    FundingPayment,
    OrderSide,
    OrderState,
    OrderUpdate,
    Origin,
    PositionSide,
)

D = Decimal
BTC, ETH = "BTC/USDT:USDT", "ETH/USDT:USDT"
T0 = datetime(2024, 5, 1, 20, 0, tzinfo=UTC)
H = timedelta(hours=1)
MAY1, MAY2 = date(2024, 5, 1), date(2024, 5, 2)
BTC_ID, ETH_ID = f"{BTC}#net#1714593600000", f"{ETH}#net#1714622400000"


def _fill(fid: str, symbol: str, side: OrderSide, contracts: str, cs: str, price: str, fee: str,
          ts: datetime, liq: str = "0") -> Fill:
    return Fill(fid, "O" + fid, "pdc" + fid, symbol, side, D(contracts), D(cs), D(price), D(fee),
                "USDT", ts, origin=Origin.CONSOLE, liq_penalty=D(liq))


def _close(ts: datetime, symbol: str, pid: str, before: str, closed: str, after: str, cc: str,
           cs: str, gross: str, fee: str, liq: str, funding: str, opened: datetime,
           fid: str) -> CloseResult:
    return CloseResult(ts, symbol, pid, PositionSide.LONG, CloseReason.MANUAL, D(before),
                       D(closed), D(after), D(cc), D(cs), D("1"), D("1"), D(gross), D(fee),
                       D(liq), D(funding), opened, fill_ids=(fid,))


def _funding(bill: str, amount: str, ts: datetime) -> FundingPayment:
    return FundingPayment(bill, BTC, BTC_ID, D("0.0001"), D("100"), D("1"), D("60000"), D(amount),
                          "USDT", ts)


@pytest.fixture
def jdir(tmp_path: Path) -> Path:
    j = Journal(tmp_path)
    j.record_order(OrderUpdate("Of1", "pdcf1", BTC, OrderSide.BUY, "market", D("100"), D("0.01"),
                               None, OrderState.PLACED, T0))  # not a fill: must not count
    j.record_fill(_fill("f1", BTC, OrderSide.BUY, "100", "0.01", "60000", "30", T0))
    j.record_funding(_funding("b1", "-6", T0 + 2 * H))
    j.record_fill(_fill("f2", BTC, OrderSide.SELL, "40", "0.01", "61000", "12.2", T0 + 5 * H))
    j.record_close(_close(T0 + 5 * H, BTC, BTC_ID, "1", "0.4", "0.6", "40", "0.01", "400",
                          "42.2", "0", "-6", T0, "f2"))
    j.record_funding(_funding("b2", "3", T0 + 6 * H))
    j.record_fill(_fill("f3", BTC, OrderSide.SELL, "60", "0.01", "62000", "18.6", T0 + 7 * H))
    j.record_close(_close(T0 + 7 * H, BTC, BTC_ID, "0.6", "0.6", "0", "60", "0.01", "1200",
                          "18.6", "0", "3", T0, "f3"))
    j.record_fill(_fill("f4", ETH, OrderSide.BUY, "10", "0.1", "3000", "0.15", T0 + 8 * H))
    j.record_fill(_fill("f5", ETH, OrderSide.SELL, "10", "0.1", "2700", "0.135", T0 + 9 * H,
                        liq="0.5"))
    j.record_close(_close(T0 + 9 * H, ETH, ETH_ID, "1", "1", "0", "10", "0.1", "-30", "0.285",
                          "0.5", "0", T0 + 8 * H, "f5"))
    j.close_sync()
    return tmp_path


def _row(day: date | None, symbol: str, closes: int, gross: str, fees: str, liq: str,
         funding: str, net: str, fills: int, volume: str | None) -> ReportRow:
    return ReportRow(day, symbol, closes, D(gross), D(fees), D(liq), D(funding), D(net), fills,
                     None if volume is None else D(volume))


def test_per_symbol_and_day_hand_checked(jdir: Path) -> None:
    assert build_report(jdir, None) == [
        _row(MAY1, BTC, 0, "0", "30", "0", "-6", "-36", 1, "1"),
        _row(MAY2, BTC, 2, "1600", "30.8", "0", "3", "1572.2", 2, "1"),
        _row(MAY2, ETH, 1, "-30", "0.285", "0.5", "0", "-30.785", 2, "2"),
        _row(None, TOTAL, 3, "1570", "61.085", "0.5", "-3", "1505.415", 5, None),
    ]


def test_total_equals_the_close_rows_net_pnl_once_everything_is_closed(jdir: Path) -> None:
    # trades rows' net_pnl: 351.8 + 1184.4 - 30.785 (what reconcile proves equals realizedPnl)
    assert build_report(jdir, None)[-1].net_pnl == D("351.8") + D("1184.4") - D("30.785")


def test_one_day(jdir: Path) -> None:
    assert build_report(jdir, MAY1) == [
        _row(MAY1, BTC, 0, "0", "30", "0", "-6", "-36", 1, "1"),
        _row(None, TOTAL, 0, "0", "30", "0", "-6", "-36", 1, None),
    ]
    assert build_report(jdir, date(2024, 5, 3)) == []


HEAD = ["day", "symbol", "closes", "gross_pnl", "fees", "liq_penalty", "funding", "net_pnl",
        "fills", "volume"]


def test_table_rounds_each_column_for_reading_and_is_aligned(jdir: Path) -> None:
    lines = format_report(build_report(jdir, None))
    assert lines[0].split() == HEAD
    assert lines[-1].split() == ["TOTAL", "3", "1570.00", "61.09", "0.50", "-3.00", "1505.42", "5"]
    assert lines[3].split() == ["2024-05-02", ETH, "1", "-30.00", "0.29", "0.50", "0.00", "-30.79",
                                "2", "2.0000"]
    assert len({len(line) for line in lines[:-1]}) == 1  # right-aligned up to the volume column


def test_table_never_prints_a_long_tail_or_minus_zero() -> None:
    row = _row(MAY1, BTC, 1, "0.00012345", "0.03887494572", "0", "-0.00387494572",
               "-0.03887494572", 1, "0.000123456")
    cells = format_report([row])[1].split()
    assert cells[3:] == ["0.00", "0.04", "0.00", "0.00", "-0.04", "1", "0.0001"]


def test_range_and_symbol_select_rows_and_make_the_total_anew(jdir: Path) -> None:
    rows = build_report(jdir, None)
    assert select(rows, MAY2, MAY2) == build_report(jdir, MAY2)
    assert select(rows, None, MAY1) == build_report(jdir, MAY1)
    btc = select(rows, symbol=BTC)
    assert [r.symbol for r in btc] == [BTC, BTC, TOTAL] and btc[-1].net_pnl == D("1536.2")
    assert select(rows, symbol="eth") == [
        _row(MAY2, ETH, 1, "-30", "0.285", "0.5", "0", "-30.785", 2, "2"),
        _row(None, TOTAL, 1, "-30", "0.285", "0.5", "0", "-30.785", 2, None)]
    assert select(rows, MAY1, MAY1, "ETH") == []


def _settings(jdir: Path) -> SimpleNamespace:
    return SimpleNamespace(journal=SimpleNamespace(dir=jdir))


def test_csv_carries_the_exact_decimals(jdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import csv

    assert main(_settings(jdir), first=MAY2, fmt="csv") == 0
    rows = list(csv.reader(capsys.readouterr().out.splitlines()))
    assert rows[0] == HEAD
    assert rows[2] == ["2024-05-02", ETH, "1", "-30", "0.285", "0.5", "0", "-30.785", "2", "2"]
    assert rows[-1] == ["", TOTAL, "3", "1570", "31.085", "0.5", "3", "1541.415", "4", ""]


def test_json_carries_the_exact_decimals_as_strings(jdir: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    import json

    assert main(_settings(jdir), symbol=BTC, fmt="json") == 0
    out = json.loads(capsys.readouterr().out)
    assert out["rows"][0] == {"day": "2024-05-01", "symbol": BTC, "closes": 0, "gross_pnl": "0",
                              "fees": "30", "liq_penalty": "0", "funding": "-6", "net_pnl": "-36",
                              "fills": 1, "volume": "1"}
    assert len(out["rows"]) == 2 and out["total"]["net_pnl"] == "1536.2"
    assert out["total"]["volume"] is None and "day" not in out["total"]
    assert main(_settings(jdir), day=date(2020, 1, 1), fmt="json") == 0
    assert json.loads(capsys.readouterr().out) == {"rows": [], "total": None}


def test_main_prints_and_exits_0(jdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(SimpleNamespace(journal=SimpleNamespace(dir=str(jdir))), MAY2) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 4 and out[-1].split()[:2] == ["TOTAL", "3"]
    assert "2024-05-01" not in "\n".join(out)


def test_main_missing_journal_dir_exits_2(tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nope"
    assert main(SimpleNamespace(journal=SimpleNamespace(dir=missing)), None) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(missing) in err and "[journal] dir" in err


def test_main_empty_day(jdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(SimpleNamespace(journal=SimpleNamespace(dir=jdir)), date(2020, 1, 1)) == 0
    assert "no journal rows" in capsys.readouterr().out
