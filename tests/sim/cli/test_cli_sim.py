"""The command line run as a real process: exit codes, one-line errors, what a command imports."""
from __future__ import annotations

import sys
from pathlib import Path

from tests.helpers.cli_helpers import (
    PERPDESK,
    _isolated,  # noqa: F401 (autouse: own folder, no key in env)
    assert_one_line_error,
    run,
)
from tests.helpers.paths import REPO


def test_bad_config_subprocess_exit_2_one_line(tmp_path: Path) -> None:
    (tmp_path / "bad.toml").write_text('[sim]\nspeed = "fast"\n')
    proc = run([str(PERPDESK), "--config", "bad.toml"], tmp_path)
    assert_one_line_error(proc, "bad.toml", "[sim] speed must be a number", '"fast"')
    assert not (tmp_path / "logs").exists()


def test_python_m_console_is_the_same(tmp_path: Path) -> None:
    (tmp_path / "bad.toml").write_text("[exchange]\nvenu = 'sim'\n")
    proc = run([sys.executable, "-m", "console", "--config", "bad.toml", "--headless"], tmp_path)
    assert_one_line_error(proc, 'unknown key [exchange] "venu" — did you mean "venue"?')


def test_toml_syntax_error_subprocess(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text("[exchange]\nvenue = \n")
    proc = run([str(PERPDESK), "report"], tmp_path)
    assert_one_line_error(proc, "config.toml: not valid TOML", "line 2")


def test_missing_credentials_subprocess(tmp_path: Path) -> None:
    (tmp_path / "okx.toml").write_text('[exchange]\nvenue = "okx"\n')
    proc = run([str(PERPDESK), "--config", "okx.toml", "--headless"], tmp_path,
               env={"PERPDESK_API_KEY": "k-123456789"})
    assert_one_line_error(proc, "PERPDESK_API_SECRET", "PERPDESK_API_PASSPHRASE")


def test_version_exits_zero_with_the_installed_version() -> None:
    from importlib.metadata import version

    proc = run([str(PERPDESK), "--version"], REPO)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"perpdesk {version('perpdesk')}" and proc.stderr == ""


def test_report_imports_only_what_it_reads(tmp_path: Path) -> None:
    """`perpdesk report` answers from the journal index: no exchange client, no UI, no log setup
    (loguru brings asyncio and multiprocessing), no domain model, no journal reader or writer."""
    journal = tmp_path / "journal"
    journal.mkdir(mode=0o700)
    (tmp_path / "config.toml").write_text(f'[journal]\ndir = "{journal}"\n')
    probe = ("import sys\nfrom console.cli import main\ncode = main(['report'])\n"
             "print(code, ' '.join(sorted(sys.modules)))\n")
    proc = run([sys.executable, "-c", probe], tmp_path)
    assert proc.returncode == 0, proc.stderr
    code, modules = proc.stdout.strip().splitlines()[-1].split(" ", 1)
    loaded = set(modules.split())
    assert code == "0" and "core.accounting.report" in loaded and "core.journal.index" in loaded
    heavy = {"ccxt", "textual", "aiohttp", "loguru", "asyncio", "core.model", "core.events",
             "core.journal.reader", "core.journal.writer", "core.venue.base", "core.support.logs"}
    assert loaded & heavy == set()
