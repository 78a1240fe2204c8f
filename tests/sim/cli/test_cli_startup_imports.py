"""What plain `perpdesk` imports before its first paint, run as a real interpreter.

Before the first frame the console imports the CLI, console.attach (to ask whether an engine
already runs on the journal) and the app; the engine, the remote engine's codec, the runner and
the exchange library load after the first paint (console/app.py `_run`), so a start-up does not
wait for them."""
from __future__ import annotations

import sys
from pathlib import Path

from tests.helpers.cli_helpers import (
    _isolated,  # noqa: F401 (autouse: own folder, no key in env)
    run,
)


def test_the_first_paint_does_not_import_the_engine_or_the_remote_engine(tmp_path: Path) -> None:
    probe = ("import sys\nimport console.cli, console.attach, console.app\n"
             "print(' '.join(sorted(sys.modules)))\n")
    proc = run([sys.executable, "-c", probe], tmp_path)
    assert proc.returncode == 0, proc.stderr
    loaded = set(proc.stdout.strip().splitlines()[-1].split())
    assert "console.app" in loaded and "textual.app" in loaded  # the probe imported them
    after_paint = {"core.engine", "core.engine.coordinator", "console.remote", "core.service.codec",
                   "core.service.runner", "ccxt", "aiohttp"}
    assert loaded & after_paint == set()
