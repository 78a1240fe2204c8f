"""What a fresh interpreter loads when it imports one part: checked in a real process."""
from __future__ import annotations

import subprocess
import sys

from tests.helpers.paths import REPO


def test_config_and_logs_import_without_textual() -> None:
    code = ("import sys, core.settings.config, core.settings.uistate, core.support.logs, console.cli; "
            "bad = [m for m in sys.modules if m.split('.')[0] == 'textual']; assert not bad, bad")
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr


def test_engine_ledger_journal_load_no_exchange_module() -> None:
    """Transitively too: importing every module of the neutral core loads no exchange module."""
    code = ("import sys, pkgutil, importlib, core.accounting.ledger\n"
            "for pkg in ('core.engine', 'core.journal', 'core.confirm', 'core.risk'):\n"
            "    mod = importlib.import_module(pkg)\n"
            "    for m in pkgutil.walk_packages(mod.__path__, pkg + '.'): importlib.import_module(m.name)\n"
            "bad = [m for m in sys.modules if m.startswith(('core.venue.okx', 'core.venue.bybit', 'core.sim.'))]\n"
            "assert not bad, bad\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
