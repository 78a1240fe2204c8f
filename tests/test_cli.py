"""The `perpdesk` command: dispatch, and one-line errors with exit code 2 (never a traceback)."""
from __future__ import annotations

import importlib
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from console.cli import main
from core.logs import shutdown_logging

REPO = Path(__file__).resolve().parents[1]
PERPDESK = Path(sys.executable).with_name("perpdesk")


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.chdir(tmp_path)
    for name in ("PERPDESK_API_KEY", "PERPDESK_API_SECRET", "PERPDESK_API_PASSPHRASE", "PERPDESK_TRACEBACK"):
        monkeypatch.delenv(name, raising=False)
    yield
    shutdown_logging()


def fake_module(monkeypatch: pytest.MonkeyPatch, name: str, func: str, calls: list[tuple[Any, ...]],
                result: int = 0) -> None:
    """Replaces only the entry function of the real module (so its import is proven too)."""

    def entry(*args: Any, **kwargs: Any) -> int:
        calls.append(args + ((kwargs,) if kwargs else ()))
        return result

    monkeypatch.setattr(importlib.import_module(name), func, entry)


def run(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("PERPDESK_")}
    return subprocess.run(args, cwd=cwd, env={**base, **(env or {})}, capture_output=True, text=True, timeout=60)


def assert_one_line_error(proc: subprocess.CompletedProcess[str], *fragments: str) -> None:
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr + proc.stdout
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    for fragment in fragments:
        assert fragment in lines[0]


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


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["report", "--day", "2024-13-01"], "expected a day as YYYY-MM-DD"),
        (["--headless", "--duration", "soon"], "expected a number of seconds"),
        (["--duration", "5"], "--duration only applies with --headless"),
        (["sim", "--host", "0.0.0.0"], "--allow-remote"),
        (["sim", "--port", "99999"], "expected a port"),
        (["--headless", "report"], "do not apply to `report`"),
        (["report", "--day", "2024-05-01", "--from", "2024-05-01"], "either it or --from/--to"),
        (["report", "--from", "2024-05-03", "--to", "2024-05-01"], "is after --to"),
        (["report", "--format", "xml"], "invalid choice: 'xml'"),
        (["frobnicate"], "invalid choice"),
        (["--config", "missing.toml"], "missing.toml: config file not found"),
    ],
)
def test_usage_errors_are_one_line(argv: list[str], fragment: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert out == "" and len(err.strip().splitlines()) == 1 and fragment in err, err


def test_version_exits_zero_with_the_installed_version() -> None:
    from importlib.metadata import version

    proc = run([str(PERPDESK), "--version"], REPO)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"perpdesk {version('perpdesk')}" and proc.stderr == ""


def test_help_exits_zero(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    assert "--headless" in capsys.readouterr().out


def test_dispatch_tui_with_read_only(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    calls: list[tuple[Any, ...]] = []
    fake_module(monkeypatch, "console.app", "run_app", calls, result=0)
    assert main(["--read-only"]) == 0
    (settings,) = calls[0]
    assert settings.ui.read_only and settings.exchange.venue == "sim"
    assert settings.config_path == tmp_path / "config.toml"
    assert list((tmp_path / "logs").glob("perpdesk_*.log"))


def test_dispatch_headless_reconcile_report(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    cfg = tmp_path / "conf" / "my.toml"
    cfg.parent.mkdir()
    cfg.write_text('[journal]\ndir = "j"\n')
    calls: list[tuple[Any, ...]] = []
    fake_module(monkeypatch, "core.runner", "run_headless", calls, result=0)
    fake_module(monkeypatch, "core.reconcile.command", "main", calls, result=1)
    fake_module(monkeypatch, "core.report", "main", calls, result=0)
    assert main(["--config", str(cfg), "--headless", "--duration", "2.5"]) == 0
    assert calls[-1][0].journal.dir == tmp_path / "conf" / "j" and calls[-1][1] == 2.5
    assert main(["reconcile", "--config", str(cfg)]) == 1
    assert calls[-1][0].config_path == cfg
    assert main(["--config", str(cfg), "report", "--day", "2024-05-01"]) == 0
    assert calls[-1][1] == date(2024, 5, 1)
    assert main(["report"]) == 0 and calls[-1][1] is None
    assert main(["report", "--from", "2024-05-01", "--to", "2024-05-02", "--symbol", "BTC",
                 "--format", "csv"]) == 0
    assert calls[-1][1:] == (None, {"first": date(2024, 5, 1), "last": date(2024, 5, 2),
                                    "symbol": "BTC", "fmt": "csv"})


def test_dispatch_sim(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[Any, ...]] = []
    fake_module(monkeypatch, "core.sim.standalone", "main", calls)
    assert main(["sim", "--port", "0", "--speed", "4", "--seed", "9"]) == 0
    assert calls[-1] == ("127.0.0.1", 0, 4.0, 9, False, None, False, "okx")
    assert main(["sim", "--host", "0.0.0.0", "--allow-remote"]) == 0
    assert calls[-1] == ("0.0.0.0", 8765, 1.0, 7, True, None, False, "okx")
    assert main(["sim", "--speed", "0", "--state", "ex.json", "--fresh"]) == 0  # a frozen market is allowed
    assert calls[-1] == ("127.0.0.1", 8765, 0.0, 7, False, Path("ex.json"), True, "okx")
    assert main(["sim", "--protocol", "bybit"]) == 0  # the Bybit v5 face of the same exchange
    assert calls[-1][-1] == "bybit"


def test_sim_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sim", "--fresh"]) == 2
    assert "--fresh only applies with --state" in capsys.readouterr().err
    assert main(["sim", "--speed", "-1"]) == 2
    assert "expected a speed factor" in capsys.readouterr().err


def test_unreachable_exchange_is_one_line_exit_2(tmp_path: Path) -> None:
    """The real headless stack against an address nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    (tmp_path / "c.toml").write_text(f'[exchange]\nvenue = "sim"\nurl = "http://127.0.0.1:{port}"\n'
                                     '[strategy]\nname = "none"\n')
    proc = run([str(PERPDESK), "--config", "c.toml", "--headless", "--duration", "5"], tmp_path)
    assert_one_line_error(proc, f"127.0.0.1:{port}")


def test_unexpected_error_is_one_line_and_logged(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    def run_headless(settings: Any, duration: Any) -> int:  # a bug deep inside the engine
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr(importlib.import_module("core.runner"), "run_headless", run_headless)
    assert main(["--headless"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "ZeroDivisionError" in err and "Traceback" not in err
    shutdown_logging()
    (log,) = (tmp_path / "logs").glob("perpdesk_*.log")
    assert "Traceback" in log.read_text() and "ZeroDivisionError" in log.read_text()


def test_any_perpdesk_error_is_one_line_with_its_own_exit_code(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """The CLI handles every PerpdeskError in one place: its message, its exit code, no traceback."""
    from core.errors import PerpdeskError
    from core.venue.base import VenueError, VenueErrorKind

    class Refused(PerpdeskError):
        exit_code = 3

    monkeypatch.setattr("console.cli._run", lambda args: (_ for _ in ()).throw(Refused("refused: try later")))
    assert main([]) == 3
    err = capsys.readouterr().err
    assert err == "refused: try later\n"
    monkeypatch.setattr("console.cli._run", lambda args: (_ for _ in ()).throw(
        VenueError("exchange said no", VenueErrorKind.REJECTED)))
    assert main([]) == 2 and capsys.readouterr().err == "exchange said no\n"


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
    assert code == "0" and "core.report" in loaded and "core.journal.index" in loaded
    heavy = {"ccxt", "textual", "aiohttp", "loguru", "asyncio", "core.model", "core.events",
             "core.journal.reader", "core.journal.writer", "core.venue.base", "core.logs"}
    assert loaded & heavy == set()
