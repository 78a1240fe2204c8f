"""`perpdesk sim`: the simulator alone, until SIGINT/SIGTERM.

Prints where it listens and the demo credentials so any OKX client (ccxt, our console with
``[exchange] url``, curl) can be pointed at it. Refuses a non-loopback bind unless told
``allow_remote``: the credentials are public, so an exposed simulator is an open door.
With ``--state FILE`` the exchange is kept in FILE (see ``core.sim.persist``) and continues from
it at the next start, as a real exchange does; ``--fresh`` starts anew and overwrites FILE.
"""
from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

from core.settings.demo import DEMO_KEY, DEMO_PASSPHRASE, DEMO_SECRET
from core.sim.control import CONTROL_TOKEN_HEADER
from core.sim.persist import SimStateError
from core.sim.server import SimServer
from core.support.net import is_loopback


async def _run(host: str, port: int, speed: float, seed: int, allow_remote: bool,
               state: Path | None, fresh: bool, protocol: str = "okx") -> int:
    try:
        srv = SimServer(host=host, port=port, speed=speed, seed=seed, allow_remote=allow_remote,
                        state_path=state, fresh=fresh, protocol=protocol)
    except SimStateError as e:
        print(f"perpdesk sim: {e}", file=sys.stderr)
        return 2
    try:
        await srv.start()
    except SimStateError as e:
        print(f"perpdesk sim: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        print(f"perpdesk sim: cannot listen on {host}:{port}: {e.strerror or e}", file=sys.stderr)
        return 2
    face = "Bybit v5" if protocol == "bybit" else "OKX v5"
    print(f"perpdesk sim: {face} simulator (speed {speed:g}{', market frozen' if speed == 0 else ''}, seed {seed})")
    if state is not None:
        how = "continued from" if srv.resumed else "new, kept in"
        print(f"  state     {how} {state} (account uid {srv.account.uid})")
    if protocol == "bybit":
        print(f"  REST      {srv.url}/v5/...")
        print(f"  WebSocket {srv.ws_url}/{{public/linear,private}}")
    else:
        print(f"  REST      {srv.url}/api/v5/...")
        print(f"  WebSocket {srv.ws_url}/{{public,private,business}}")
    print(f"  control   {srv.url}/sim/v1/{{price,funding,adl,drop,fault,state}}")
    if srv.control_token is not None:
        print(f"  control token  header {CONTROL_TOKEN_HEADER}: {srv.control_token}")
    if protocol == "bybit":
        print(f"  demo key  {DEMO_KEY}  secret {DEMO_SECRET}")
        print(f"  console   [exchange] venue = \"bybit\", url = \"{srv.url}\" with PERPDESK_API_KEY and "
              "PERPDESK_API_SECRET set as above")
    else:
        print(f"  demo key  {DEMO_KEY}  secret {DEMO_SECRET}  passphrase {DEMO_PASSPHRASE}")
        print(f"  console   [exchange] venue = \"okx\", url = \"{srv.url}\" with PERPDESK_API_* set as above")
    print("Ctrl-C to stop.", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):  # pragma: no cover - non-POSIX
            signal.signal(sig, lambda *_: loop.call_soon_threadsafe(stop.set))
    try:
        await stop.wait()
    finally:
        await srv.stop()
    print("perpdesk sim: stopped", flush=True)
    return 0


def main(host: str = "127.0.0.1", port: int = 8765, speed: float = 1.0, seed: int = 1,
         allow_remote: bool = False, state: Path | None = None, fresh: bool = False, protocol: str = "okx") -> int:
    """Run the simulator until SIGINT/SIGTERM; exit code 0, or 2 with one clear message."""
    if not is_loopback(host) and not allow_remote:
        print(f"perpdesk sim: refusing to bind to non-loopback address {host!r}: the demo credentials are "
              "public. Use --allow-remote to do it anyway.", file=sys.stderr)
        return 2
    if speed < 0:
        print(f"perpdesk sim: --speed must be >= 0, got {speed}", file=sys.stderr)
        return 2
    if not is_loopback(host):
        print(f"perpdesk sim: WARNING listening on non-loopback {host}; anyone who can reach it can trade "
              "with the demo credentials.", file=sys.stderr)
    try:
        return asyncio.run(_run(host, port, speed, seed, allow_remote, state, fresh, protocol))
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":  # python -m core.sim.standalone [port] [speed]
    args = sys.argv[1:]
    sys.exit(main(port=int(args[0]) if args else 8765, speed=float(args[1]) if len(args) > 1 else 1.0))  # float ok: speed factor
