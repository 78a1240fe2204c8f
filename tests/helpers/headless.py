"""A headless engine as a real process on a rig's simulator, and reading its journal safely."""
from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from tests.helpers.engine_helpers import BTC, Rig
from tests.helpers.paths import REPO


def _config(rig: Rig, tmp_path: Path) -> Path:
    cfg = tmp_path / "config.toml"
    cfg.write_text(f'[exchange]\nvenue = "sim"\nurl = "{rig.srv.url}"\nsymbols = ["{BTC}"]\n'
                   f'[journal]\ndir = "journal"\n[strategy]\nname = "none"\n'
                   f'[sim]\nprotocol = "{rig.protocol}"\n')
    return cfg


async def _spawn(cfg: Path, *args: str) -> asyncio.subprocess.Process:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "console", "--config", str(cfg), *args, cwd=cfg.parent, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)


async def _start_headless(cfg: Path) -> asyncio.subprocess.Process:
    proc = await _spawn(cfg, "--headless")
    assert proc.stdout is not None
    line = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
    if "perpdesk headless" not in line:
        err = (await proc.stderr.read()).decode() if proc.stderr else ""
        raise AssertionError(f"headless did not start: {line!r} {err}")
    return proc


def _safe(read, directory: Path) -> list:  # type: ignore[no-untyped-def]
    try:
        return read(directory)
    except Exception:  # noqa: BLE001 - a file being appended to
        return []
