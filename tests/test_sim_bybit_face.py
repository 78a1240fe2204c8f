"""`perpdesk sim` with the Bybit v5 face, chosen by ``[sim] protocol`` or ``--protocol`` (real processes)."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

PERPDESK = Path(sys.executable).with_name("perpdesk")


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("PERPDESK_")}


def test_config_protocol_bybit_serves_bybit_v5(tmp_path: Path) -> None:
    (tmp_path / "c.toml").write_text('[sim]\nprotocol = "bybit"\n')
    proc = subprocess.Popen([str(PERPDESK), "--config", "c.toml", "sim", "--port", "0", "--speed", "0"],
                            cwd=tmp_path, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline() for _ in range(2)]
        assert "Bybit v5 simulator" in lines[0], lines
        url = lines[1].split()[1].removesuffix("/v5/...")
        with urllib.request.urlopen(url + "/v5/market/tickers?category=linear&symbol=BTCUSDT", timeout=10) as r:
            body = json.loads(r.read())
        assert body["retCode"] == 0 and body["result"]["list"][0]["symbol"] == "BTCUSDT"
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=20)
    assert proc.returncode == 0


def test_unknown_protocol_is_one_clear_error(tmp_path: Path) -> None:
    (tmp_path / "c.toml").write_text('[sim]\nprotocol = "binance"\n')
    proc = subprocess.run([str(PERPDESK), "--config", "c.toml", "sim", "--port", "0"], cwd=tmp_path, env=_env(),
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "protocol" in proc.stderr and '"okx" or "bybit"' in proc.stderr and "Traceback" not in proc.stderr
