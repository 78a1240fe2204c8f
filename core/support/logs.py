"""Logging: loguru to logs/perpdesk_YYYY-MM-DD.log, never to the terminal, with secrets redacted.

Why no stderr sink: the TUI owns the terminal, and one stray line would tear its drawing. Why
redaction in a patcher (not per call site): ccxt errors, request dumps and our own debug lines can
all carry a key, a signature or a passphrase; scrubbing every record (message and exception text)
in one place is the only way to be sure none reaches the file. Tracebacks are rendered without
variable values (diagnose=False) for the same reason.

The ``log_*`` helpers write one greppable line per trading event (FILL, POSITION CLOSED,
FUNDING FEE) so that ``grep "POSITION CLOSED" logs/*.log`` answers "what happened".
"""
from __future__ import annotations

import os
import re
import time
import traceback
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from loguru import logger

from core.money import plain
from core.settings.config import ENV_KEY, ENV_PASSPHRASE, ENV_SECRET, ConfigError, Settings
from core.support.logfile import DailyLogFile, LogFileError
from core.support.safefile import UnsafeFileError, make_private_dir

if TYPE_CHECKING:  # annotations only: `perpdesk report` need not import the domain model
    from core.model import CloseResult, Fill, FundingPayment

MASK = "***"
_secrets: set[str] = set()
_sink_id: int | None = None
_file: DailyLogFile | None = None
_event_level = 20  # loguru INFO: the level of the FILL / POSITION CLOSED / FUNDING FEE lines

_KEY = r"(?:api[_-]?key|secret(?:[_-]?key)?|passphrase|password|access[_-]?token|sign|ok-access-(?:key|sign|passphrase))"
_SECRET_PATTERN = re.compile(
    rf"""(?ix)
    (?<![\w-])(?P<key>{_KEY})(?P<kq>["']?)       # key, optionally quoted:  apiKey  "secret"  'sign'
    (?P<sep>\s*[:=]\s*)                          # =  or  :
    (?P<val>"[^"]*"|'[^']*'|[^\s"'&,;}}\])]+)    # "quoted value"  or  bare value
    """
)


def add_secret(value: str | None) -> None:
    """Registers a value that must never be written out verbatim (too-short values are ignored
    because masking e.g. "a" everywhere would wreck every line)."""
    if value and len(value.strip()) >= 4:
        _secrets.add(value.strip())


# Every name _KEY can match contains one of these (lower case): a line with none of them (every
# FILL line, most lines) skips the regex, which is most of a log call's cost on the fill path.
_KEY_HINTS = ("key", "secret", "pass", "token", "sign")


def redact(text: str) -> str:
    """Masks known secret values and key=value / "key": "value" / header patterns."""
    for secret in sorted(_secrets, key=len, reverse=True):
        text = text.replace(secret, MASK)
    lower = text.lower()
    if not any(hint in lower for hint in _KEY_HINTS):
        return text

    def mask(m: re.Match[str]) -> str:
        val = m["val"]
        quoted = val[0] + MASK + val[0] if val[0] in "\"'" else MASK
        return f"{m['key']}{m['kq']}{m['sep']}{quoted}"

    return _SECRET_PATTERN.sub(mask, text)


_stamp_cache: dict[int, tuple[str, str]] = {}


def _stamp(epoch: float) -> str:
    """``2026-11-24 00:19:28.540+0000`` (local time, as loguru writes it); the part down to the
    second is cached because loguru's own ``{time:...}`` formatting cost more than the rest of a
    FILL line."""
    second = int(epoch)
    head = _stamp_cache.get(second)
    if head is None:
        _stamp_cache.clear()
        local = datetime.fromtimestamp(second).astimezone()
        head = _stamp_cache[second] = (local.strftime("%Y-%m-%d %H:%M:%S"), local.strftime("%z"))
    return f"{head[0]}.{int((epoch - second) * 1000):03d}{head[1]}"


def _patch(record: Any) -> None:
    record["extra"]["_ts"] = _stamp(record["time"].timestamp())
    record["message"] = redact(record["message"])
    exc = record["exception"]
    if exc is not None and exc.type is not None:
        text = "".join(traceback.format_exception(exc.type, exc.value, exc.traceback))
        record["extra"]["_exc"] = redact(text)


def _format(record: Any) -> str:
    # The exception is emitted from the redacted copy, never loguru's own {exception}.
    tail = "\n{extra[_exc]}" if "_exc" in record["extra"] else "\n"
    return "{extra[_ts]} | {level: <7} | {name} | {message}" + tail


def setup_logging(settings: Settings) -> None:
    """Routes all logging to the daily file under [logs] dir; safe to call more than once."""
    global _sink_id, _file, _event_level
    logger.remove()  # the default stderr sink, and any earlier file sink of ours
    _sink_id = None
    if _file is not None:
        _file.close()
    for name in (ENV_KEY, ENV_SECRET, ENV_PASSPHRASE):
        add_secret(os.environ.get(name))
    directory = settings.logs.dir
    try:
        make_private_dir(directory)  # 0700: the log holds every fill
    except UnsafeFileError as exc:
        raise ConfigError(f"{settings.config_path.name}: [logs] dir: {exc.message}") from None
    except OSError as exc:
        raise ConfigError(
            f"{settings.config_path.name}: [logs] dir {str(directory)!r} cannot be created ({exc.strerror or exc})"
        ) from None
    logger.configure(patcher=_patch)
    try:
        _file = DailyLogFile(directory, settings.logs.retention_days)
    except LogFileError as exc:
        _file = None
        raise ConfigError(f"{settings.config_path.name}: [logs] {exc.message}") from None
    _sink_id = logger.add(_file, level=settings.logs.level, format=_format, enqueue=False,
                          backtrace=False, diagnose=False, colorize=False)
    _event_level = logger.level(settings.logs.level).no


def flush_logs() -> None:
    """Write out buffered log lines now (a reader of the file that cannot wait 0.25 s)."""
    if _file is not None:
        _file.flush()


def logging_active() -> bool:
    """True once our file sink is up (before that, loguru would print to the terminal)."""
    return _sink_id is not None


def shutdown_logging() -> None:
    """Removes the file sink (tests, and the end of a run, so the file is closed)."""
    global _sink_id, _file
    if _sink_id is not None:
        try:
            logger.remove(_sink_id)
        except ValueError:
            pass
        _sink_id = None
    if _file is not None:
        _file.close()
        _file = None


# ---------------------------------------------------------------- one line per trading event


def _event(message: str) -> None:
    """One INFO trading-event line, written straight to the day file when our sink is up.

    Why not ``logger.info``: loguru builds a record (frame lookup, level, time, patcher, format)
    for each call, ~25 us a line, more than the journal row of the same fill. The line written
    here is the one the sink would have written (same stamp, level, name and redaction); without
    our sink (tests capturing loguru, a library use) it goes through loguru as usual.
    """
    sink = _file
    if sink is None or _sink_id is None:
        logger.opt(depth=1).info(message)
    elif _event_level <= 20:
        sink.write(f"{_stamp(time.time())} | INFO    | core.support.logs | {redact(message)}\n")


def _event_filtered() -> bool:
    """True when our sink is up and its level is above INFO: the trading-event line would not be
    written, so it is not formatted either (its Decimals to text cost more than the check)."""
    return _file is not None and _sink_id is not None and _event_level > 20


def log_fill(fill: Fill, texts: Sequence[str] | None = None) -> None:
    """``texts``: the fill's contracts, coins, price and fee as its journal row wrote them
    (core.journal.schema.FILL_LOG_TEXTS), so a fill's Decimals become text once; without them
    they are turned to text here."""
    if _event_filtered():
        return
    contracts, coins, price, fee = texts if texts is not None else (
        plain(fill.contracts), plain(fill.coins), plain(fill.price), plain(fill.fee))
    flags = " reduce-only" if fill.reduce_only else ""
    _event(
        f"FILL {fill.symbol} {fill.side.value} {contracts} contracts ({coins} coins) "
        f"@ {price} fee {fee} {fill.fee_ccy} {fill.liquidity.value} "
        f"origin {fill.origin.value} pos {fill.pos_side}{flags} order {fill.order_id} fill {fill.fill_id}"
    )


def log_close(close: CloseResult, texts: Sequence[str] | None = None) -> None:
    """``texts``: the close's sizes, prices and money as its journal row wrote them
    (core.journal.schema.CLOSE_LOG_TEXTS); without them they are turned to text here."""
    if _event_filtered():
        return
    (size_before, size_after, size_closed, contracts_closed, entry, exit_, gross, fee, liq,
     funding, net) = texts if texts is not None else (
        plain(close.size_before), plain(close.size_after), plain(close.size_closed),
        plain(close.contracts_closed), plain(close.entry_price), plain(close.exit_price),
        plain(close.gross_pnl), plain(close.fee), plain(close.liq_penalty), plain(close.funding),
        plain(close.net_pnl))
    penalty = f" liq_penalty {liq}" if close.liq_penalty else ""
    _event(
        f"POSITION CLOSED {close.symbol} {close.side.value} {close.reason.value} "
        f"size {size_before} -> {size_after} coins "
        f"(closed {size_closed} coins, {contracts_closed} contracts) "
        f"entry {entry} exit {exit_} "
        f"gross {gross} fee {fee}{penalty} funding {funding} "
        f"net {net} position {close.position_id} source {close.source.value}"
    )


def log_funding(payment: FundingPayment) -> None:
    if _event_filtered():
        return
    direction = "received" if payment.amount > 0 else "paid" if payment.amount < 0 else "zero"
    _event(
        f"FUNDING FEE {payment.symbol} {direction} {plain(payment.amount)} {payment.ccy} "
        f"rate {plain(payment.rate)} on {plain(payment.position_contracts)} contracts "
        f"({plain(payment.position_coins)} coins) mark {plain(payment.mark_price)} "
        f"position {payment.position_id} bill {payment.bill_id}"
    )
