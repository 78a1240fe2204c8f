"""The simulator's public demo account, written once for the simulator, the venue and the config.

Why public: the simulator is a local stand-in for OKX demo trading; its key signs requests exactly
as OKX checks them, so that signing is exercised, but it guards nothing. A venue "sim" run needs no
environment variables because of it. Like OKX demo keys, the simulator's keys are demo keys: a
client must send ``x-simulated-trading: 1`` with them.
"""
from __future__ import annotations

DEMO_KEY = "perpdesk-demo"
DEMO_SECRET = "perpdesk-demo-secret"
DEMO_PASSPHRASE = "perpdesk-demo"
DEMO_CREDENTIALS = (DEMO_KEY, DEMO_SECRET, DEMO_PASSPHRASE)
