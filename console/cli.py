"""The `perpdesk` command (and `python -m console`).

Why dispatch is lazy: `perpdesk --headless`, `reconcile` and `report` must not pay for importing
Textual, nor the TUI for ccxt's import until it needs it.
Expected failures (bad config, missing credential, unreachable exchange) arrive as a
``core.errors.PerpdeskError``; ``main`` turns it, in one place, into one stderr line and its exit code.
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Any, NoReturn

from core.config import SimSettings, load_credentials, load_settings
from core.errors import EXIT_FAIL, PerpdeskError
from core.net import is_loopback

DEFAULT_SIM_PORT = 8765


class _UsageError(PerpdeskError):
    """A command line that cannot run as written."""


class _Parser(argparse.ArgumentParser):
    """argparse that reports a usage error as one line instead of usage + error + exit."""

    def error(self, message: str) -> NoReturn:
        raise _UsageError(f"{self.prog}: {message} (see {self.prog} --help)")


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text!r}")
    return value


def _speed(text: str) -> float:
    """--speed: 0 freezes the market (prices move only through the control API)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a speed factor >= 0, got {text!r}") from None
    if not 0 <= value <= 1000:
        raise argparse.ArgumentTypeError(f"expected a speed factor from 0 to 1000, got {text!r}")
    return value


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a day as YYYY-MM-DD, got {text!r}") from None


def _port(text: str) -> int:
    if not text.isdigit() or not 0 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"expected a port from 0 to 65535, got {text!r}")
    return int(text)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="perpdesk", description="Terminal console for OKX perpetual futures.")
    parser.add_argument("--config", metavar="PATH", help="config file (default ./config.toml)")
    parser.add_argument("--read-only", action="store_true", help="no trading keys or commands")
    parser.add_argument("--headless", action="store_true", help="run engine and journal without the UI")
    parser.add_argument("--duration", type=_positive, metavar="SECONDS", help="headless: stop after this long")
    sub = parser.add_subparsers(dest="command", metavar="{sim,reconcile,report}")

    d = SimSettings()
    sim = sub.add_parser("sim", help="run the exchange simulator alone (OKX v5 face, or Bybit v5 with --protocol)")
    sim.add_argument("--host", default=d.host, help=f"bind address (default {d.host})")
    sim.add_argument("--port", type=_port, default=DEFAULT_SIM_PORT, help=f"default {DEFAULT_SIM_PORT}; 0 = any free port")
    sim.add_argument("--speed", type=_speed, default=d.speed, help="market speed factor; 0 freezes the market")
    sim.add_argument("--seed", type=int, default=d.seed, help="random seed for the price paths")
    sim.add_argument("--allow-remote", action="store_true", help="allow binding to a non-loopback address")
    sim.add_argument("--state", metavar="FILE", type=Path,
                     help="keep the exchange in FILE and continue from it at the next start")
    sim.add_argument("--fresh", action="store_true", help="with --state: start anew, overwriting FILE")
    sim.add_argument("--protocol", choices=("okx", "bybit"), default=None,
                     help="the exchange face: okx (OKX v5) or bybit (Bybit v5); default [sim] protocol, else okx")

    rec = sub.add_parser("reconcile", help="journal vs exchange, position by position")
    rep = sub.add_parser("report", help="PnL, fees and funding per symbol and day")
    rep.add_argument("--day", type=_day, metavar="YYYY-MM-DD", help="only this UTC day")
    for p in (sim, rec, rep):  # `perpdesk reconcile --config x` as well as `perpdesk --config x reconcile`
        p.add_argument("--config", metavar="PATH", default=argparse.SUPPRESS, help="config file")
    return parser


def _target(module: str, func: str) -> Callable[..., int]:
    """A feature's entry point, imported only when that command runs (see the module docstring)."""
    return getattr(importlib.import_module(module), func)


def _run(args: argparse.Namespace) -> int:
    if args.command and (args.headless or args.duration is not None or args.read_only):
        raise _UsageError(f"perpdesk: --headless, --duration and --read-only do not apply to `{args.command}`")
    if args.duration is not None and not args.headless:
        raise _UsageError("perpdesk: --duration only applies with --headless")
    if args.command == "sim" and args.fresh and args.state is None:
        raise _UsageError("perpdesk sim: --fresh only applies with --state FILE")
    if args.command == "sim" and not args.allow_remote and not is_loopback(args.host):
        raise _UsageError(f"perpdesk sim: --host {args.host} is not a loopback address; "
                          "add --allow-remote to expose the simulator to the network")

    settings = load_settings(args.config)
    if args.read_only:
        settings = replace(settings, ui=replace(settings.ui, read_only=True))
    if args.command in (None, "reconcile"):
        load_credentials(settings)  # fail before any UI or connection when a variable is missing
    if args.command == "report":
        # Read-only and offline, it books nothing and logs no event: it prints. Setting up the
        # log (loguru and asyncio, multiprocessing) would cost it a good part of its second.
        return _target("core.report", "main")(settings, args.day)
    from core.logs import setup_logging

    setup_logging(settings)
    from loguru import logger

    logger.info(f"perpdesk start: command {args.command or ('headless' if args.headless else 'tui')} "
                f"config {settings.config_path} venue {settings.exchange.venue}")
    if args.command == "sim":
        return _target("core.sim.standalone", "main")(
            args.host, args.port, args.speed, args.seed, args.allow_remote, args.state, args.fresh,
            args.protocol or settings.sim.protocol)
    if args.command == "reconcile":
        return _target("core.reconcile", "main")(settings)
    if args.headless:
        return _target("core.runner", "run_headless")(settings, args.duration)
    return _target("console.app", "run_app")(settings)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the process exit code (2 = could not run, with one line on stderr)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        code = _run(args)
        return int(code) if code is not None else 0
    except SystemExit as exc:  # --help / --version paths of argparse
        return exc.code if isinstance(exc.code, int) else 0
    except KeyboardInterrupt:
        return 130
    except PerpdeskError as exc:  # the one place that turns expected failures into exit codes
        return _expected(exc)
    except Exception as exc:  # noqa: BLE001 - anything else: one line, details in the log
        return _unexpected(exc)


def _expected(exc: PerpdeskError) -> int:
    """One plain line (the first, should a message ever carry more), no traceback."""
    from core.logs import redact

    message = exc.message.strip().splitlines()[0] if exc.message.strip() else type(exc).__name__
    _log(lambda lg: lg.error(message))
    print(redact(message), file=sys.stderr)
    return exc.exit_code


def _unexpected(exc: Exception) -> int:
    from core.logs import redact

    if os.environ.get("PERPDESK_TRACEBACK"):
        raise exc
    _log(lambda lg: lg.opt(exception=exc).error("unexpected error"))
    detail = redact(str(exc).splitlines()[0] if str(exc) else "")
    print(f"perpdesk: unexpected error: {type(exc).__name__}"
          f"{': ' + detail if detail else ''} (details in the log; PERPDESK_TRACEBACK=1 shows them here)",
          file=sys.stderr)
    return EXIT_FAIL


def _log(write: Callable[[Any], None]) -> None:
    """Logs only if our file sink is up: loguru's default sink would print to the terminal."""
    from core.logs import logging_active

    if logging_active():
        from loguru import logger

        write(logger)
