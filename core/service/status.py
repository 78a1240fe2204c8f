"""`perpdesk status`: one line per engine running on this host, from the socket registry.

Every engine listens on a socket in this user's socket folder (core/service/paths.py); each is
asked for its status (a hello with the role ``status``). A socket nobody answers on is a dead
engine's (killed before it could remove it) and is removed. Exit 0, also when none runs.
"""
from __future__ import annotations

import contextlib
import socket
import stat
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from core.accounting.report import MONEY_PLACES, for_reading
from core.service import protocol as proto
from core.service.paths import registry_dirs, runtime_dir

TIMEOUT_S = 2.0
CENT_CURRENCIES = frozenset({"USDT", "USDC", "USD"})  # shown to the cent, as `report` shows them


def money(amount: str, ccy: str) -> str:
    """An amount the engine sent (an exact decimal string) as a person reads it: a dollar coin to
    the cent like `perpdesk report`; another coin (BTC margin) exact, as a cent of it is not a
    rounding a trader would accept; a string that is not a number as it came."""
    if ccy.upper() not in CENT_CURRENCIES:
        return amount
    try:
        return for_reading(Decimal(amount), MONEY_PLACES)
    except InvalidOperation:
        return amount


def query(path: Path, timeout: float = TIMEOUT_S) -> dict[str, Any] | None:
    """The status an engine gives on ``path``; None when nobody listens (the file is stale)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        try:
            sock.connect(str(path))
        except (ConnectionRefusedError, FileNotFoundError):
            return None
        sock.sendall(proto.frame({"t": "hello", "v": proto.PROTOCOL_VERSION, "role": proto.ROLE_STATUS}))
        data = b""
        while not data.endswith(b"\n"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    answer = proto.parse(data)
    if answer["t"] != "status":
        return {"error": str(answer.get("reason") or answer["t"])}
    status = answer.get("status")
    return status if isinstance(status, dict) else {}


def line(status: dict[str, Any]) -> str:
    if "error" in status:
        return f"? engine refused the status request: {status['error']}"
    started = status.get("started") or ""
    with contextlib.suppress(ValueError):
        started = datetime.fromisoformat(started).astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    strategy = status.get("strategy") or "none"
    state = f"{strategy} {'running' if status.get('strategy_running') else 'stopped'}" \
        if strategy != "none" else "no strategy"
    equity = status.get("equity")
    ccy = str(status.get("ccy") or "")
    account = status.get("account") or "?"
    return (f"{status.get('journal')}  {status.get('venue')}{' demo' if status.get('sandbox') else ''} "
            f"account {account}  strategy {state}, trading {status.get('trading')}  "
            f"equity {money(str(equity), ccy) + ' ' + ccy if equity else '-'}  "
            f"positions {status.get('positions')}  consoles {status.get('consoles')}  "
            f"loop lag {status.get('loop_lag_ms')} ms  pid {status.get('pid')} since {started}")


def main() -> int:
    found = 0
    entries: list[Path] = []
    for folder in registry_dirs():
        try:
            entries += sorted(folder.iterdir())
        except OSError:
            continue
    for path in entries:
        try:
            if not stat.S_ISSOCK(path.lstat().st_mode):
                continue
            status = query(path)
        except (OSError, ValueError) as exc:
            print(f"{path}: no answer ({exc})")
            continue
        if status is None:
            with contextlib.suppress(OSError):
                path.unlink()  # nobody listens: a killed engine's socket
            continue
        found += 1
        print(line(status))
    if not found:
        print(f"no engine running on this host (socket folder {runtime_dir()})")
    return 0
