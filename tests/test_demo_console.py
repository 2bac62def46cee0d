"""`riverwatch demo --console`: the duty officer logs in to the console the demo serves, sees the Longjiang
incident's alerts and acknowledges one, which the ledger records (issue 17, Done means). The page itself is
driven by a real Chromium in tests/test_console_browser.py; here the demo's wiring, over real HTTP."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import aiohttp

from bench.servers import free_port


def _lines(proc: subprocess.Popen[str], out: list[str]) -> None:
    assert proc.stdout is not None
    for line in proc.stdout:
        out.append(line)


def _wait(out: list[str], needle: str, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in out:
            if needle in line:
                return line
        time.sleep(0.2)
    raise AssertionError(f"{needle!r} not printed within {timeout} s:\n{''.join(out)}")


async def _acknowledge_as_duty(base: str, password: str) -> tuple[list[dict[str, object]], dict[str, object]]:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        async with http.get(f"{base}/console/login") as r:
            token = re.search(r'name="csrf" value="([^"]+)"', await r.text())
        assert token is not None
        form = {"user": "duty", "password": password, "csrf": token.group(1)}
        async with http.post(f"{base}/console/login", data=form, headers={"Origin": base}) as r:
            assert r.status == 200, await r.text()  # the redirect to the console page, followed
            page = await r.text()
        setup = json.loads(re.search(r'<script id="setup" type="application/json">(.*?)</script>', page, re.S)[1])  # type: ignore[index]
        async with http.get(f"{base}/console/api/state") as r:
            state = await r.json()
        water = [a for a in state["water"] if a["parameter"] == "cd"]
        assert water, state
        headers = {"Origin": base, "X-CSRF-Token": setup["csrf"]}
        async with http.post(f"{base}/console/api/ack", json={"alert": water[0]["id"]}, headers=headers) as r:
            assert r.status == 200, await r.text()
            return water, await r.json()


def test_the_demo_serves_the_console_where_its_incident_is_acknowledged(tmp_path: Path) -> None:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "monitor", "demo", "--console", f"127.0.0.1:{port}", "--speed", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=tmp_path,
    )
    out: list[str] = []
    threading.Thread(target=_lines, args=(proc, out), daemon=True).start()
    try:
        login = _wait(out, "console at http://", 60)
        password = login.rsplit("password ", 1)[1].strip()
        _wait(out, "the console stays at", 180)
        water, acked = asyncio.run(_acknowledge_as_duty(f"http://127.0.0.1:{port}", password))
        assert {a["station"] for a in water} >= {"yemao", "luodong"}  # open at the end of the scenario
        assert acked["acked_by"] == "duty" and acked["alert"] == water[0]["id"]
        proc.send_signal(signal.SIGINT)
        assert proc.wait(30) == 0, "".join(out)
        assert "=== riverwatch demo summary ===" in "".join(out)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
