"""Times in milliseconds and the position ids built from them: the one place for both.

A position life's id carries its opening millisecond, and the journal, the close confirmer and
reconcile all compare that millisecond with the exchange's own stamps. So the conversion must be
exact both ways: ``int(ts.timestamp() * 1000)`` goes through a float and can land one millisecond
low, which would give one life two ids. Here the arithmetic is integer (timedelta) only.
"""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_MS = timedelta(milliseconds=1)


def ms_from_utc(ts: datetime) -> int:
    """Milliseconds since the epoch, floored; a naive time counts as UTC (the journal's zone)."""
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=UTC)
    return (ts - EPOCH) // _ONE_MS


def utc_from_ms(ms: int | str) -> datetime:
    """The UTC time of an epoch millisecond count (venues send them as strings)."""
    return EPOCH + timedelta(milliseconds=int(ms))


def ms_from_iso(text: str) -> int:
    """Milliseconds of an ISO-8601 time as the journal writes it (``...Z``; naive counts as UTC)."""
    return ms_from_utc(datetime.fromisoformat(text.replace("Z", "+00:00")))


def position_id_for(symbol: str, pos_side: str, opened_at: datetime, seq: int = 1) -> str:
    """One position life's journal id; deterministic when the ledger is rebuilt from the same fills.

    ``symbol#pos_side#opened_ms`` for the first life of a leg opened in that millisecond, and
    ``symbol#pos_side#opened_ms.<seq>`` (seq 2, 3, ...) for the next ones: a fast bot or a burst can
    open, close and open again within one millisecond, and two lives must never share an id (the
    journal, the close confirmer and reconcile would merge them)."""
    if seq < 1:
        raise ValueError(f"position life sequence {seq} < 1")
    ms = ms_from_utc(opened_at)
    return f"{symbol}#{pos_side}#{ms}" if seq == 1 else f"{symbol}#{pos_side}#{ms}.{seq}"


def split_position_id(position_id: str) -> tuple[str, str, int, int]:
    """``symbol#pos_side#opened_ms[.seq]`` -> (symbol, pos_side, opened_ms, seq); seq 1 when absent.

    Raises ValueError for anything else."""
    parts = position_id.rsplit("#", 2)
    if len(parts) != 3:
        raise ValueError(f"position_id {position_id!r} is not symbol#pos_side#opened_ms[.seq]")
    symbol, pos_side, tail = parts
    ms_text, dot, seq_text = tail.partition(".")
    if not ms_text.isdigit() or (dot and not seq_text.isdigit()):
        raise ValueError(f"position_id {position_id!r} is not symbol#pos_side#opened_ms[.seq]")
    seq = int(seq_text) if dot else 1
    if dot and seq < 2:
        raise ValueError(f"position_id {position_id!r}: a sequence suffix starts at 2")
    return symbol, pos_side, int(ms_text), seq


def parse_position_id(position_id: str) -> tuple[str, str, datetime]:
    """``symbol#pos_side#opened_ms[.seq]`` -> (symbol, pos_side, opened_at)."""
    symbol, pos_side, opened_ms, _ = split_position_id(position_id)
    return symbol, pos_side, utc_from_ms(opened_ms)


def life_seq(position_id: str) -> int:
    """The life's sequence among the lives of its leg opened in its millisecond (1 when the id
    carries none or does not parse)."""
    try:
        return split_position_id(position_id)[3]
    except ValueError:
        return 1


def pos_side_of(position_id: str) -> str:
    """The leg an id names; ``net`` when the text is not an id (lenient: index and replay keys)."""
    parts = position_id.split("#")
    return parts[1] if len(parts) >= 3 else "net"
