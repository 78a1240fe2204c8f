"""Helpers every bench section shares (imported by the sections and by ``python -m bench``)."""
from __future__ import annotations

import asyncio
import atexit
import os
import shutil
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent


def quiet_logs() -> Path:
    """Send loguru to a temp log file the way the product does (file sink, never the terminal)."""
    from core.settings.config import LogSettings, Settings
    from core.support.logs import setup_logging

    tmp = Path(tempfile.mkdtemp(prefix="perpdesk-bench-logs-"))
    atexit.register(shutil.rmtree, tmp, True)
    setup_logging(replace(Settings(), logs=replace(LogSettings(), dir=tmp)))
    return tmp


def run_async(coro: Any, timeout: float) -> Any:
    """asyncio.run with a deadline; on timeout every task's stack goes to stderr, then TimeoutError."""

    async def guarded() -> Any:
        task = asyncio.ensure_future(coro)
        done, _ = await asyncio.wait({task}, timeout=timeout)
        if task in done:
            return task.result()
        for t in asyncio.all_tasks():
            if t is not asyncio.current_task():
                t.print_stack(limit=6, file=sys.stderr)
        task.cancel()
        raise TimeoutError(f"section did not finish within {timeout:g} s (task stacks on stderr)")

    return asyncio.run(guarded())


async def wait_until(cond: Any, timeout: float, what: str) -> None:
    """Poll ``cond`` every 50 ms; TimeoutError naming ``what`` when it is still false after ``timeout``."""
    t0 = time.perf_counter()
    while not cond():
        if time.perf_counter() - t0 > timeout:
            raise TimeoutError(f"{what} not reached within {timeout:g} s")
        await asyncio.sleep(0.05)


def console_script(name: str) -> str:
    """Path of an installed console script of this project (e.g. ``perpdesk``).

    Why beside ``sys.executable`` first: ``python -m bench`` may run from any virtualenv, activated
    or not; its scripts sit next to its interpreter. Then ``$VIRTUAL_ENV``, the repository's
    ``.venv``, and last ``PATH``.
    """
    candidates = [Path(sys.executable).parent / name]
    if os.environ.get("VIRTUAL_ENV"):
        candidates.append(Path(os.environ["VIRTUAL_ENV"]) / "bin" / name)
    candidates.append(REPO / ".venv" / "bin" / name)
    for exe in candidates:
        if exe.is_file() and os.access(exe, os.X_OK):
            return str(exe)
    found = shutil.which(name)
    if found is None:
        raise FileNotFoundError(f"console script {name!r} not found beside {sys.executable} nor on PATH "
                                "(pip install -e . in this interpreter's environment)")
    return found


def machine() -> dict[str, Any]:
    """What a figure was measured on: a baseline from another machine is compared with care."""
    import platform

    return {"cores": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(),
            "load_avg_1m": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None}


# ------------------------------------------------------------------ host-speed reference
#
# Why: this host's speed swings by 2-3x with the other work on it (the same commit measured UI
# CPU 12.5 % one day and 29-30 % another). A figure read against a reference measured in the
# same run, in rounds interleaved with ours, says what the code costs rather than how busy the
# host was: each CPU or time figure is also reported as a multiple of the reference.

REF_LOOP_N = 200_000  # iterations of ref_loop(): about 30-60 ms of CPU on the bench host


def ref_loop(n: int = REF_LOOP_N) -> int:
    """Fixed pure-Python work (dict get/set, attribute-free arithmetic, small strings, a call):
    what the interpreter does all day in the engine and the console, and nothing else."""
    table: dict[int, int] = {}
    acc = 0
    for i in range(n):
        k = i & 1023
        acc += table.get(k, 0) ^ (i * 7)
        table[k] = acc & 0xFFFF
        if i % 97 == 0:
            acc += len(str(acc))
    return acc


def ref_loop_ms(n: int = REF_LOOP_N, runs: int = 3) -> float:
    """CPU milliseconds of this thread for one ``ref_loop``, the least of ``runs``: the host
    reference.

    CPU time (not wall time) because the figures it is held against (UI CPU %, engine-only CPU %)
    are CPU time too, and a loaded host inflates both alike (slower cores, shared caches, a
    virtual CPU descheduled mid-slice is still charged to whoever ran on it). The least of a few
    runs because a single 30 ms run now and then read 40-50 ms with nothing else changed (a
    preemption charged to it): the host's mode shows in every run, such a spike in one."""
    import time

    best = float("inf")
    for _ in range(max(1, runs)):
        t0 = time.thread_time()
        ref_loop(n)
        best = min(best, time.thread_time() - t0)
    return best * 1000


def median(xs: list[float]) -> float:
    s = sorted(xs)
    n = len(s)
    return s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2


def spread(xs: list[float], digits: int = 2) -> list[float]:
    """[lowest, highest] of a figure's rounds: what ``--compare`` holds a change against."""
    return [round(min(xs), digits), round(max(xs), digits)]


def per_ref(values: list[float], refs: list[float], digits: int = 2) -> tuple[float, list[float]]:
    """Each round's figure divided by the same round's reference: (median, [min, max]).

    The rounds pair a measurement with the reference taken right beside it, so both saw the same
    host mode; the median of the per-round ratios is the figure in reference units."""
    ratios = [v / r for v, r in zip(values, refs, strict=True) if r]
    if not ratios:
        return 0.0, [0.0, 0.0]
    return round(median(ratios), digits), spread(ratios, digits)
