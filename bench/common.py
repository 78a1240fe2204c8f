"""Helpers every bench section shares (imported by the sections and by ``python -m bench``)."""
from __future__ import annotations

import asyncio
import atexit
import os
import shutil
import sys
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent


def quiet_logs() -> Path:
    """Send loguru to a temp log file the way the product does (file sink, never the terminal)."""
    from core.config import LogSettings, Settings
    from core.logs import setup_logging

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
