"""The `perpdesk` command: dispatch, and one-line errors with exit code 2 (never a traceback)."""
from __future__ import annotations

import importlib
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from console.cli import main
from core.support.logs import shutdown_logging
from tests.helpers.cli_helpers import _isolated  # noqa: F401 (autouse: own folder, no key in env)


def fake_module(monkeypatch: pytest.MonkeyPatch, name: str, func: str, calls: list[tuple[Any, ...]],
                result: int = 0) -> None:
    """Replaces only the entry function of the real module (so its import is proven too)."""

    def entry(*args: Any, **kwargs: Any) -> int:
        calls.append(args + ((kwargs,) if kwargs else ()))
        return result

    monkeypatch.setattr(importlib.import_module(name), func, entry)


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
    fake_module(monkeypatch, "core.service.runner", "run_headless", calls, result=0)
    fake_module(monkeypatch, "core.reconcile.command", "main", calls, result=1)
    fake_module(monkeypatch, "core.accounting.report", "main", calls, result=0)
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


def test_unexpected_error_is_one_line_and_logged(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    def run_headless(settings: Any, duration: Any) -> int:  # a bug deep inside the engine
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr(importlib.import_module("core.service.runner"), "run_headless", run_headless)
    assert main(["--headless"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "ZeroDivisionError" in err and "Traceback" not in err
    shutdown_logging()
    (log,) = (tmp_path / "logs").glob("perpdesk_*.log")
    assert "Traceback" in log.read_text() and "ZeroDivisionError" in log.read_text()


def test_any_perpdesk_error_is_one_line_with_its_own_exit_code(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """The CLI handles every PerpdeskError in one place: its message, its exit code, no traceback."""
    from core.support.errors import PerpdeskError
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
