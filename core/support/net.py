"""Network address facts shared by the CLI and the simulator (kept import-light for the CLI)."""
from __future__ import annotations

import ipaddress


def is_loopback(host: str) -> bool:
    """True for localhost and 127.0.0.0/8 or ::1: the only binds that need no --allow-remote."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
