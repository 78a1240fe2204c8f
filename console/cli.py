"""The `perpdesk` command (and `python -m console`).

Why dispatch is lazy: `perpdesk --headless`, `reconcile` and `report` must not pay for importing
Textual, nor the TUI for ccxt's import until it needs it.
Expected failures (bad config, missing credential, unreachable exchange) arrive as a
``core.support.errors.PerpdeskError``; ``main`` turns it, in one place, into one stderr line and its exit code.
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

from console.actions import ACTION_IDS
from core.settings.config import SimSettings, load_credentials, load_settings
from core.support.errors import EXIT_FAIL, PerpdeskError
from core.support.net import is_loopback

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
    parser.add_argument("--version", action=_Version, nargs=0, help="print the version and exit")
    parser.add_argument("--config", metavar="PATH", help="config file (default ./config.toml)")
    parser.add_argument("--read-only", action="store_true", help="no trading keys or commands")
    parser.add_argument("--headless", action="store_true", help="run engine and journal without the UI")
    parser.add_argument("--duration", type=_positive, metavar="SECONDS", help="headless: stop after this long")
    sub = parser.add_subparsers(dest="command", metavar="{serve,attach,status,sim,reconcile,report,store,accounts}")

    serve = sub.add_parser("serve", help="the engine as a service: no UI, a control socket consoles attach to")
    serve.add_argument("--duration", type=_positive, metavar="SECONDS", default=argparse.SUPPRESS,
                       help="stop after this long")
    attach = sub.add_parser("attach", help="the console of the engine running on this config's journal")
    attach.add_argument("--read-only", action="store_true", dest="attach_read_only",
                        help="a console the engine accepts no command from")
    sub.add_parser("status", help="one line per engine running on this host")

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
    rep.add_argument("--from", dest="first", type=_day, metavar="YYYY-MM-DD", help="from this UTC day on")
    rep.add_argument("--to", dest="last", type=_day, metavar="YYYY-MM-DD", help="up to this UTC day (included)")
    rep.add_argument("--symbol", metavar="SYMBOL", help="one symbol: BTC/USDT:USDT, or its coin: BTC")
    rep.add_argument("--format", dest="fmt", choices=("table", "csv", "json"), default="table",
                     help="table (rounded for reading; the default), csv or json (exact decimals)")
    store, acc = _store_parsers(sub)
    rep.add_argument("--store", action="store_true", help="from PostgreSQL: every engine, and the total")
    rep.add_argument("--url", metavar="URL", help="with --store: the store's URL (default [store] read_url)")
    for p in (serve, attach, sim, rec, rep, store, acc):  # `perpdesk reconcile --config x` as well as `perpdesk --config x reconcile`
        p.add_argument("--config", metavar="PATH", default=argparse.SUPPRESS, help="config file")
    return parser


class _Version(argparse.Action):
    """--version: the installed version (pyproject.toml), looked up only when asked for, so the
    other commands do not pay for importlib.metadata."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> None:
        from importlib.metadata import PackageNotFoundError, version

        try:
            found = version("perpdesk")
        except PackageNotFoundError:  # a source tree that was never installed
            found = "unknown (not installed)"
        print(f"perpdesk {found}")
        parser.exit(0)


def _store_parsers(sub: Any) -> tuple[argparse.ArgumentParser, argparse.ArgumentParser]:
    """`perpdesk store init` and `perpdesk accounts` (core/store)."""
    store = sub.add_parser("store", help="the PostgreSQL store: `store init` creates it")
    store.add_argument("action", choices=("init",), help="init: schema, migrations and the two roles")
    store.add_argument("--url", metavar="URL", help="an admin role's URL (default [store] url)")
    store.add_argument("--writer", default="perpdesk_writer", help="the engines' insert-only role")
    store.add_argument("--reader", default="perpdesk_reader", help="the read-only role")
    acc = sub.add_parser("accounts", help="every engine's account at a glance, from the store")
    acc.add_argument("--format", choices=("table", "json"), default="table")
    acc.add_argument("--url", metavar="URL", help="the store's URL (default [store] read_url)")
    return store, acc


def _store_command(settings: Any, args: argparse.Namespace) -> int:
    """The store's commands: read-only or admin, no log set-up (like `report`)."""
    if args.command == "store":
        return _target("core.store.commands", "init_main")(settings, args.url, args.writer, args.reader)
    if args.command == "accounts":
        return _target("core.store.commands", "accounts_main")(settings, args.url, args.format)
    return _target("core.store.commands", "report_main")(settings, args.url, args.day, first=args.first,
                                                         last=args.last, symbol=args.symbol, fmt=args.fmt)


def _target(module: str, func: str) -> Callable[..., int]:
    """A feature's entry point, imported only when that command runs (see the module docstring)."""
    return getattr(importlib.import_module(module), func)


def _check_report_days(args: argparse.Namespace) -> None:
    if args.day is not None and (args.first or args.last):
        raise _UsageError("perpdesk report: --day is one day; use either it or --from/--to")
    if args.first and args.last and args.first > args.last:
        raise _UsageError(f"perpdesk report: --from {args.first} is after --to {args.last}")


def _check_usage(args: argparse.Namespace) -> None:
    """Options that cannot go together: one usage line (exit 2)."""
    if args.command == "attach":
        args.read_only = args.read_only or args.attach_read_only
    if args.command not in (None, "attach") and args.read_only:
        raise _UsageError(f"perpdesk: --read-only does not apply to `{args.command}`")
    if args.command and (args.headless or (args.duration is not None and args.command != "serve")):
        raise _UsageError(f"perpdesk: --headless and --duration do not apply to `{args.command}`")
    if args.duration is not None and not args.headless and args.command != "serve":
        raise _UsageError("perpdesk: --duration only applies with --headless (or to `serve`)")
    if args.command == "report":
        _check_report_days(args)
    if args.command == "sim" and args.fresh and args.state is None:
        raise _UsageError("perpdesk sim: --fresh only applies with --state FILE")
    if args.command == "sim" and not args.allow_remote and not is_loopback(args.host):
        raise _UsageError(f"perpdesk sim: --host {args.host} is not a loopback address; "
                          "add --allow-remote to expose the simulator to the network")


def _run(args: argparse.Namespace) -> int:
    if args.command == "status":
        return _target("core.service.status", "main")()
    _check_usage(args)
    # ui-state.toml holds the console's look (theme, layout, sort): commands without a console
    # do not read it
    settings = load_settings(args.config, ui_state=args.command in (None, "attach") and not args.headless,
                             keymap_ids=ACTION_IDS)
    if args.read_only:
        settings = replace(settings, ui=replace(settings.ui, read_only=True))
    if args.command is None and not args.headless:  # plain `perpdesk` on a running engine
        from console.attach import engine_socket

        if engine_socket(settings) is not None:
            print(f"perpdesk: an engine already runs on journal {settings.journal.dir}: "
                  "attaching to it", file=sys.stderr)
            args.command = "attach"
    if args.command in (None, "serve", "reconcile"):
        load_credentials(settings)  # fail before any UI or connection when a variable is missing
    if args.command in ("store", "accounts") or (args.command == "report" and args.store):
        return _store_command(settings, args)
    if args.command == "report":
        # Read-only and offline, it books nothing and logs no event: it prints. Setting up the
        # log (loguru and asyncio, multiprocessing) would cost it a good part of its second.
        return _target("core.accounting.report", "main")(settings, args.day, first=args.first, last=args.last,
                                               symbol=args.symbol, fmt=args.fmt)
    from core.support.logs import setup_logging

    setup_logging(settings)
    from loguru import logger

    logger.info(f"perpdesk start: command {args.command or ('headless' if args.headless else 'tui')} "
                f"config {settings.config_path} venue {settings.exchange.venue}")
    return _logged_command(settings, args)


def _logged_command(settings: Any, args: argparse.Namespace) -> int:
    """The commands that run with the log set up: the simulator, reconcile, the engine, a console."""
    if args.command == "sim":
        return _target("core.sim.standalone", "main")(
            args.host, args.port, args.speed, args.seed, args.allow_remote, args.state, args.fresh,
            args.protocol or settings.sim.protocol)
    if args.command == "reconcile":
        return _target("core.reconcile.command", "main")(settings)
    if args.headless:  # the older name of `serve`
        return _target("core.service.runner", "run_headless")(settings, args.duration)
    if args.command == "serve":
        return _target("core.service.runner", "run_headless")(settings, args.duration, "serve")
    if args.command == "attach":
        return _target("console.attach", "run_attach")(settings, args.read_only)
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
    from core.support.logs import redact

    message = exc.message.strip().splitlines()[0] if exc.message.strip() else type(exc).__name__
    _log(lambda lg: lg.error(message))
    print(redact(message), file=sys.stderr)
    return exc.exit_code


def _unexpected(exc: Exception) -> int:
    from core.support.logs import redact

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
    from core.support.logs import logging_active

    if logging_active():
        from loguru import logger

        write(logger)
