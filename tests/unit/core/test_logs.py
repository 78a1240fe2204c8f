"""Logging goes to logs/perpdesk_YYYY-MM-DD.log only, one greppable line per event, secrets masked."""
from __future__ import annotations

import os
import re
import stat
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from loguru import logger

from core.model import CloseReason, CloseResult, Fill, FundingPayment, OrderSide, Origin, PositionSide
from core.settings.config import ConfigError, LogSettings, Settings
from core.support.logfile import DailyLogFile, LogFileError
from core.support.logs import (
    flush_logs,
    log_close,
    log_fill,
    log_funding,
    redact,
    setup_logging,
    shutdown_logging,
)

SECRET, PASS, KEY = "s3cr3t-VALUE-from-env", "pass-PHRASE-42", "key-ABCDEF-123"
TS = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def log_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("PERPDESK_API_SECRET", SECRET)
    monkeypatch.setenv("PERPDESK_API_PASSPHRASE", PASS)
    monkeypatch.setenv("PERPDESK_API_KEY", KEY)
    settings = Settings(config_path=tmp_path / "config.toml", logs=LogSettings(dir=tmp_path / "logs", level="DEBUG"))
    setup_logging(settings)
    yield tmp_path / "logs"
    shutdown_logging()


def read_log(directory: Path) -> str:
    flush_logs()
    files = sorted(directory.glob("perpdesk_*.log"))
    assert len(files) == 1, files
    assert files[0].name == f"perpdesk_{datetime.now():%Y-%m-%d}.log"
    return files[0].read_text(encoding="utf-8")


def test_log_file_in_logs_dir_and_nothing_on_terminal(log_dir: Path, capfd: pytest.CaptureFixture[str]) -> None:
    logger.info("hello {not a format field}")
    logger.warning("second line")
    out, err = capfd.readouterr()
    assert out == "" and err == ""
    text = read_log(log_dir)
    assert "hello {not a format field}" in text and "second line" in text


def test_secrets_never_reach_the_log_file(log_dir: Path) -> None:
    logger.info(f"env values: {KEY} {SECRET} {PASS}")
    logger.debug("GET /api/v5/account apiKey=abcdef123&secret=zzz999 passphrase=hello-world")
    logger.debug('login {"op": "login", "args": [{"apiKey": "AK-1", "passphrase": "two words", "sign": "SIG+/="}]}')
    logger.debug("headers {'OK-ACCESS-KEY': 'hk-1', 'OK-ACCESS-SIGN': 'hs-2', 'OK-ACCESS-PASSPHRASE': 'hp-3'}")
    logger.debug("OK-ACCESS-SIGN: rawsig== next")
    try:
        raise RuntimeError(f"request failed, secret={SECRET}-tail")
    except RuntimeError:
        logger.exception("boom")
    text = read_log(log_dir)
    for leaked in (KEY, SECRET, PASS, "abcdef123", "zzz999", "hello-world", "AK-1", "two words", "SIG+/=",
                   "hk-1", "hs-2", "hp-3", "rawsig"):
        assert leaked not in text, leaked
    assert "apiKey=***" in text and '"passphrase": "***"' in text and "'OK-ACCESS-SIGN': '***'" in text
    assert "RuntimeError" in text and "Traceback" in text and "next" in text


def test_redact_keeps_ordinary_text() -> None:
    line = "design=blue sign_up ok, secretary: Bob; FILL BTC/USDT:USDT buy 1 contracts"
    assert redact(line) == line
    assert redact("sign=abc") == "sign=***"


def test_setup_twice_keeps_one_file_sink(log_dir: Path, tmp_path: Path) -> None:
    setup_logging(Settings(config_path=tmp_path / "config.toml", logs=LogSettings(dir=log_dir)))
    logger.info("once")
    assert read_log(log_dir).count("once") == 1


def test_level_filters(log_dir: Path, tmp_path: Path) -> None:
    setup_logging(Settings(config_path=tmp_path / "c.toml", logs=LogSettings(dir=log_dir, level="WARNING")))
    logger.info("quiet-info")
    logger.warning("loud-warning")
    text = read_log(log_dir)
    assert "quiet-info" not in text and "loud-warning" in text


def test_event_lines(log_dir: Path) -> None:
    fill = Fill(
        fill_id="t1", order_id="o1", client_order_id="pdc1", symbol="BTC/USDT:USDT", side=OrderSide.SELL,
        contracts=Decimal("3"), contract_size=Decimal("0.01"), price=Decimal("65000.5"), fee=Decimal("0.0975"),
        fee_ccy="USDT", ts=TS, reduce_only=True, origin=Origin.CONSOLE,
    )
    close = CloseResult(
        closed_at=TS, symbol="BTC/USDT:USDT", position_id="BTC/USDT:USDT#net#1", side=PositionSide.LONG,
        reason=CloseReason.MANUAL, size_before=Decimal("0.05"), size_closed=Decimal("0.03"),
        size_after=Decimal("0.02"), contracts_closed=Decimal("3"), contract_size=Decimal("0.01"),
        entry_price=Decimal("64000"), exit_price=Decimal("65000.5"), gross_pnl=Decimal("30.015"),
        fee=Decimal("0.2"), liq_penalty=Decimal("0"), funding=Decimal("-0.05"), opened_at=TS,
    )
    funding = FundingPayment(
        bill_id="b9", symbol="ETH/USDT:USDT", position_id="ETH/USDT:USDT#net#2", rate=Decimal("0.0001"),
        position_contracts=Decimal("10"), position_coins=Decimal("1"), mark_price=Decimal("3000"),
        amount=Decimal("-0.3"), ccy="USDT", ts=TS,
    )
    log_fill(fill)
    log_close(close)
    log_close(replace(close, reason=CloseReason.LIQUIDATION, liq_penalty=Decimal("1.5")))
    log_funding(funding)
    lines = read_log(log_dir).splitlines()
    fills = [l for l in lines if "| FILL " in l]
    assert len(fills) == 1 and "sell 3 contracts (0.03 coins) @ 65000.5 fee 0.0975 USDT" in fills[0]
    assert "reduce-only" in fills[0] and "fill t1" in fills[0]
    closes = [l for l in lines if "POSITION CLOSED" in l]
    assert len(closes) == 2
    assert ("POSITION CLOSED BTC/USDT:USDT long manual size 0.05 -> 0.02 coins (closed 0.03 coins, 3 contracts)"
            in closes[0])
    assert "gross 30.015 fee 0.2 funding -0.05 net 29.765" in closes[0] and "liq_penalty" not in closes[0]
    assert "liquidation" in closes[1] and "liq_penalty 1.5" in closes[1] and "net 28.265" in closes[1]
    fund = [l for l in lines if "FUNDING FEE" in l]
    assert len(fund) == 1 and "FUNDING FEE ETH/USDT:USDT paid -0.3 USDT rate 0.0001" in fund[0]


LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}[+-]\d{4} \| (\w+) +\| ([\w.]+) \| (.*)$")


def _fill() -> Fill:
    return Fill(fill_id="t2", order_id="o2", client_order_id="pds2", symbol="ETH/USDT:USDT",
                side=OrderSide.BUY, contracts=Decimal("1"), contract_size=Decimal("0.1"),
                price=Decimal("3000"), fee=Decimal("0.15"), fee_ccy="USDT", ts=TS,
                origin=Origin.STRATEGY)


def test_event_lines_are_laid_out_like_loguru_lines(log_dir: Path) -> None:
    logger.info("plain loguru line")
    log_fill(_fill())
    lines = read_log(log_dir).splitlines()
    parsed = [LINE.match(line) for line in lines]
    assert all(parsed), lines
    assert [(m[1], m[3][:9]) for m in parsed if m] == [("INFO", "plain log"), ("INFO", "FILL ETH/")]
    assert lines[0].index(" | INFO") == lines[1].index(" | INFO")  # same stamp width


def test_event_lines_follow_the_level(log_dir: Path, tmp_path: Path) -> None:
    setup_logging(Settings(config_path=tmp_path / "c.toml", logs=LogSettings(dir=log_dir, level="WARNING")))
    log_fill(_fill())
    logger.warning("after the fill")
    text = read_log(log_dir)
    assert "FILL" not in text and "after the fill" in text


class _CountedDecimal(Decimal):
    """A Decimal that counts how often it is turned into text (what formatting a line does)."""

    texts: list[int] = []  # noqa: RUF012 - one counter for the test below

    def __str__(self) -> str:
        self.texts.append(1)
        return super().__str__()


def test_event_lines_filtered_by_the_level_are_not_formatted(log_dir: Path, tmp_path: Path) -> None:
    # the fill path logs a FILL (and a POSITION CLOSED) line per execution: with the level above
    # INFO nothing is written, so no Decimal of them is turned into text either
    price = _CountedDecimal("3000")
    fill = replace(_fill(), price=price)
    close = CloseResult(
        closed_at=TS, symbol="ETH/USDT:USDT", position_id="ETH/USDT:USDT#net#1", side=PositionSide.LONG,
        reason=CloseReason.MANUAL, size_before=Decimal("0.1"), size_closed=Decimal("0.1"),
        size_after=Decimal("0"), contracts_closed=Decimal("1"), contract_size=Decimal("0.1"),
        entry_price=Decimal("2900"), exit_price=price, gross_pnl=Decimal("10"),
        fee=Decimal("0.3"), liq_penalty=Decimal("0"), funding=Decimal("0"), opened_at=TS,
    )
    funding = FundingPayment(
        bill_id="b1", symbol="ETH/USDT:USDT", position_id="ETH/USDT:USDT#net#1", rate=Decimal("0.0001"),
        position_contracts=Decimal("1"), position_coins=Decimal("0.1"), mark_price=price,
        amount=Decimal("-0.03"), ccy="USDT", ts=TS,
    )
    setup_logging(Settings(config_path=tmp_path / "c.toml", logs=LogSettings(dir=log_dir, level="WARNING")))
    _CountedDecimal.texts.clear()
    log_fill(fill)
    log_close(close)
    log_funding(funding)
    assert _CountedDecimal.texts == []
    setup_logging(Settings(config_path=tmp_path / "c.toml", logs=LogSettings(dir=log_dir, level="INFO")))
    log_fill(fill)  # written: the price is formatted, so the count above could have moved
    assert _CountedDecimal.texts and "@ 3000 fee" in read_log(log_dir)


def test_lines_reach_the_file_without_a_flush_and_warnings_at_once(log_dir: Path) -> None:
    (path,) = log_dir.glob("perpdesk_*.log")
    logger.warning("urgent line")
    assert "urgent line" in path.read_text()  # no wait: warnings are written out immediately
    log_fill(_fill())
    deadline = time.monotonic() + 10  # a bound for a loaded machine, not the expected wait
    while "FILL ETH" not in path.read_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "FILL ETH" in path.read_text()  # the flush thread wrote it (every 0.25 s)


def test_daily_file_rotates_at_local_midnight_and_prunes_old_days(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import core.support.logfile

    (tmp_path / "perpdesk_2020-01-01.log").write_text("old\n")
    (tmp_path / "notes.log").write_text("not ours\n")
    late = datetime(2024, 5, 1, 23, 59, 59).timestamp()  # local time, as the file names are
    clock = [late]
    monkeypatch.setattr(core.support.logfile.time, "time", lambda: clock[0])
    daily = DailyLogFile(tmp_path, retention_days=7)
    try:
        daily.write("before midnight\n")
        clock[0] = late + 2
        daily.write("after midnight\n")
        daily.flush()
    finally:
        daily.close()
    assert (tmp_path / "perpdesk_2024-05-01.log").read_text() == "before midnight\n"
    assert (tmp_path / "perpdesk_2024-05-02.log").read_text() == "after midnight\n"
    assert not (tmp_path / "perpdesk_2020-01-01.log").exists()
    assert (tmp_path / "notes.log").exists()


def test_daily_file_on_a_full_disk_drops_lines_and_never_raises(tmp_path: Path) -> None:
    if not Path("/dev/full").exists():
        pytest.skip("no /dev/full on this machine")
    daily = DailyLogFile(tmp_path, retention_days=7)
    daily._file.close()  # type: ignore[union-attr]
    daily._file = open("/dev/full", "a", encoding="utf-8")  # the disk under the day file fills up
    try:
        daily.write("one\n")
        daily.write("two\n", urgent=True)  # written out now: ENOSPC
    finally:
        daily.close()
    assert daily.dropped == 2


# ---- private files (issue 10, item 6) ------------------------------------------------------------
def _settings(tmp_path: Path, directory: Path) -> Settings:
    return Settings(config_path=tmp_path / "config.toml", logs=LogSettings(dir=directory))


def test_log_folder_0700_and_file_0600_under_umask_000(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        setup_logging(_settings(tmp_path, tmp_path / "var" / "logs"))
        logger.warning("a line")
        flush_logs()
    finally:
        os.umask(old)
        shutdown_logging()
    (path,) = (tmp_path / "var" / "logs").glob("perpdesk_*.log")
    assert "a line" in path.read_text()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    for folder in (path.parent, path.parent.parent):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700, folder


def test_log_file_symlink_is_refused_with_its_name(tmp_path: Path) -> None:
    directory = tmp_path / "logs"
    directory.mkdir()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.write_text("")
    link = directory / f"perpdesk_{datetime.now():%Y-%m-%d}.log"
    link.symlink_to(elsewhere)
    try:
        with pytest.raises(ConfigError) as err:
            setup_logging(_settings(tmp_path, directory))
    finally:
        shutdown_logging()
    assert str(link) in err.value.message and "symbolic link" in err.value.message
    assert "\n" not in err.value.message
    with pytest.raises(LogFileError):
        DailyLogFile(directory, 7)
    assert elsewhere.read_text() == ""


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a file to another user needs root")
def test_log_file_of_another_user_is_refused(tmp_path: Path) -> None:
    directory = tmp_path / "logs"
    directory.mkdir()
    path = directory / f"perpdesk_{datetime.now():%Y-%m-%d}.log"
    path.write_text("theirs\n")
    os.chown(path, 54321, 54321)
    try:
        with pytest.raises(ConfigError, match="owned by another user"):
            setup_logging(_settings(tmp_path, directory))
    finally:
        shutdown_logging()
    assert path.read_text() == "theirs\n"


def test_event_lines_from_the_journal_rows_texts_are_the_same_lines(log_dir: Path) -> None:
    # the fill path hands log_fill / log_close the texts of the row it just journaled: the
    # lines are the ones the Decimals give, and no Decimal of them is turned to text again
    from core.journal.schema import CLOSE_LOG_TEXTS, FILL_LOG_TEXTS, close_row, fill_row

    fill = replace(_fill(), price=Decimal("3000.50"), fee=Decimal("-0.0150"), reduce_only=True)
    close = CloseResult(
        closed_at=TS, symbol="ETH/USDT:USDT", position_id="ETH/USDT:USDT#net#1", side=PositionSide.LONG,
        reason=CloseReason.LIQUIDATION, size_before=Decimal("0.30"), size_closed=Decimal("0.1"),
        size_after=Decimal("0.2"), contracts_closed=Decimal("1"), contract_size=Decimal("0.1"),
        entry_price=Decimal("2900"), exit_price=Decimal("3000.50"), gross_pnl=Decimal("10.05"),
        fee=Decimal("0.3"), liq_penalty=Decimal("1.5"), funding=Decimal("-0.01"), opened_at=TS,
    )
    fill_texts, close_texts = FILL_LOG_TEXTS(fill_row(fill).values), CLOSE_LOG_TEXTS(close_row(close).values)
    log_fill(fill)
    log_close(close)
    counted = _CountedDecimal("3000.5")
    _CountedDecimal.texts.clear()
    log_fill(replace(fill, price=counted), fill_texts)
    log_close(replace(close, exit_price=counted), close_texts)
    assert _CountedDecimal.texts == []
    lines = [line.split(" | ", 1)[1] for line in read_log(log_dir).splitlines()]
    assert len(lines) == 4 and lines[2:] == lines[:2]
    assert "@ 3000.5 fee -0.015 USDT" in lines[0] and "exit 3000.5" in lines[1]
    assert "size 0.3 -> 0.2 coins" in lines[1] and "liq_penalty 1.5" in lines[1]
