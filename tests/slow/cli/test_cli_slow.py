"""The command line against an exchange nothing answers: it waits out the connect timeout."""
from __future__ import annotations

import socket
from pathlib import Path

from tests.helpers.cli_helpers import (
    PERPDESK,
    _isolated,  # noqa: F401 (autouse: own folder, no key in env)
    assert_one_line_error,
    run,
)


def test_unreachable_exchange_is_one_line_exit_2(tmp_path: Path) -> None:
    """The real headless stack against an address nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    (tmp_path / "c.toml").write_text(f'[exchange]\nvenue = "sim"\nurl = "http://127.0.0.1:{port}"\n'
                                     '[strategy]\nname = "none"\n')
    proc = run([str(PERPDESK), "--config", "c.toml", "--headless", "--duration", "5"], tmp_path)
    assert_one_line_error(proc, f"127.0.0.1:{port}")
