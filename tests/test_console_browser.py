"""The console in a real headless Chromium, driven over the Chrome DevTools protocol, against the real
service (real mosquitto, a real HTTP receiver): a duty officer logs in, a cadmium exceedance published over
MQTT appears on the page and colours its station, the officer clicks Acknowledge (and Silence, with a
duration and a reason), and `riverwatch alerts` and the ledger show who acknowledged and silenced it; the
plume reaching the next station shows as the incident's reach. The Chinese page names the stations in Chinese.

The screenshot is written to $CONSOLE_SCREENSHOT when set (docs/console.png is made that way)."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio

from bench.receiver import HttpReceiver
from bench.servers import Mosquitto
from monitor.alerts.ledger import Ledger
from monitor.config import ConsoleUser
from monitor.service.console_auth import hash_password
from monitor.service.console_command import write_users
from simulators.publish import publish
from tests.one_step import one_step
from tests.service_proc import ServiceProcess

REPO = Path(__file__).resolve().parent.parent
T0 = 1326585600  # 2012-01-15T08:00:00+08:00
PASSWORD = "duty officer 2012"
# --no-sandbox: the tests run as root, where Chromium's sandbox refuses to start
CHROMIUM_FLAGS = (
    *("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run"),
    *("--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0", "--lang=en-US", "--hide-scrollbars"),
)


class Browser:
    """One page of a headless Chromium, spoken to as the DevTools protocol's JSON messages over a websocket."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.seq = 0

    async def send(self, method: str, **params: Any) -> dict[str, Any]:
        self.seq += 1
        me = self.seq
        await self.ws.send_json({"id": me, "method": method, "params": params})
        while True:
            msg = await asyncio.wait_for(self.ws.receive_json(), 30)
            if msg.get("id") == me:
                if "error" in msg:
                    raise AssertionError(f"{method}: {msg['error']}")
                result: dict[str, Any] = msg["result"]
                return result

    async def js(self, expression: str) -> Any:
        r = await self.send("Runtime.evaluate", expression=expression, awaitPromise=True, returnByValue=True)
        if "exceptionDetails" in r:
            raise AssertionError(f"{expression}: {r['exceptionDetails']}")
        return r["result"].get("value")

    async def wait(self, expression: str, what: str, timeout: float = 30.0) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:  # a document half loaded (no body yet) is "not yet"
            value = await self.js(f"(() => {{ try {{ return {expression}; }} catch (e) {{ return null; }} }})()")
            if value:
                return value
            await asyncio.sleep(0.2)
        body = await self.js("document.body ? document.body.innerText : ''")
        raise AssertionError(f"timed out waiting for {what}; the page says:\n{body}")

    async def goto(self, url: str) -> None:
        """Navigate and wait for the new document (redirects followed)."""
        await self.js("window.__left = true")
        await self.send("Page.navigate", url=url)
        await self.wait("!window.__left && document.readyState === 'complete'", url)

    async def click(self, selector: str) -> None:
        """A real mouse click at the middle of the element, as a user's."""
        box = await self.wait(
            f"(() => {{ const e = document.querySelector({json.dumps(selector)}); if (!e) return null;"
            " e.scrollIntoView({block: 'center'}); const r = e.getBoundingClientRect();"
            " return [r.x + r.width / 2, r.y + r.height / 2]; })()",
            selector,
        )
        for kind in ("mousePressed", "mouseReleased"):
            await self.send("Input.dispatchMouseEvent", type=kind, x=box[0], y=box[1], button="left", clickCount=1)

    async def type_into(self, selector: str, text: str) -> None:
        await self.click(selector)
        await self.send("Input.insertText", text=text)


@pytest.fixture
def chromium(tmp_path: Path) -> Iterator[int]:
    """Debian's headless Chromium; yields its DevTools port. Stopped by its process group, whatever happened."""
    binary = shutil.which("chromium")
    assert binary is not None, "Debian's chromium is not installed (apt-get install chromium)"
    profile = tmp_path / "chromium-profile"
    proc = subprocess.Popen(
        [binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "about:blank"],
        stdout=subprocess.DEVNULL,
        stderr=(tmp_path / "chromium.log").open("wb"),
        start_new_session=True,
    )
    try:
        active = profile / "DevToolsActivePort"
        deadline = time.monotonic() + 30
        while not (active.exists() and active.read_text().strip()):
            assert proc.poll() is None and time.monotonic() < deadline, (tmp_path / "chromium.log").read_text()
            time.sleep(0.1)
        yield int(active.read_text().splitlines()[0])
    finally:
        with_group = proc.pid  # the group it leads (start_new_session): its renderers and helpers go with it
        try:
            os.killpg(with_group, signal.SIGTERM)
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(with_group, signal.SIGKILL)
            proc.wait()
        except ProcessLookupError:
            pass


@pytest_asyncio.fixture
async def page(chromium: int) -> AsyncIterator[Browser]:
    async with aiohttp.ClientSession() as http:
        async with http.get(f"http://127.0.0.1:{chromium}/json/list") as r:
            targets = await r.json()
        target = next(t for t in targets if t["type"] == "page")
        async with http.ws_connect(target["webSocketDebuggerUrl"], max_msg_size=64 * 2**20) as ws:
            b = Browser(ws)
            await b.send("Page.enable")
            await b.send(
                "Emulation.setDeviceMetricsOverride", width=1280, height=1000, deviceScaleFactor=1, mobile=False
            )
            yield b


@pytest.fixture
def service(tmp_path: Path, mosquitto: Mosquitto, http_receiver: HttpReceiver) -> Iterator[ServiceProcess]:
    users = tmp_path / "console-users.toml"
    write_users(users, {"li": ConsoleUser("li", hash_password(PASSWORD), "duty")})
    svc = ServiceProcess(
        tmp_path,
        f"""
[mqtt]
url = "{mosquitto.url}"
client_id = "console-browser"

[thresholds]
files = ["{REPO}/thresholds/gb3838-2002.toml", "{REPO}/thresholds/longjiang-stations.toml", "{one_step(tmp_path)}"]

[notify]
group_wait = 0
urls = ["{http_receiver.json_url()}"]
utc_offset = "+08:00"

[console]
enabled = true
users_file = "{users}"
poll = "1s"
""",
    )
    svc.start()
    yield svc
    svc.stop()


def reading(station: str, ts: float, value: float) -> tuple[int, str, bytes]:
    return int(ts * 1e9), f"river/{station}/cd", json.dumps({"unit": "mg/L", "ts": ts, "value": value}).encode()


@pytest.mark.asyncio
async def test_duty_officer_sees_an_alert_appear_and_acknowledges_it(
    service: ServiceProcess, mosquitto: Mosquitto, http_receiver: HttpReceiver, page: Browser
) -> None:
    base = f"http://{service.http}/console/"
    await page.goto(base)  # not logged in: the login form
    assert await page.js("location.pathname") == "/console/login"
    await page.type_into("input[name=user]", "li")
    await page.type_into("input[name=password]", PASSWORD)
    await page.click("button[type=submit]")
    await page.wait("location.pathname === '/console/' && document.body.dataset.loaded", "the console after login")
    assert await page.js("document.querySelector('#water .none') !== null")  # no alert yet
    assert await page.js("document.querySelector('[data-station=yemao]').dataset.state") == "ok"

    publish([reading("lalang", T0, 0.004), reading("yemao", T0, 0.03)], mosquitto.url)  # Yemao: 6x the limit
    row = "#water tr[data-alert^='yemao/cd/']"
    await page.wait(f"!!document.querySelector({json.dumps(row)})", "the Yemao cadmium alert on the page")
    alert_id = await page.js(f"document.querySelector({json.dumps(row)}).dataset.alert")
    cells = await page.js(f"document.querySelector({json.dumps(row)}).innerText")
    assert "Yemao hydropower station" in cells and "cadmium" in cells and "serious" in cells, cells
    await page.wait("document.querySelector('[data-station=yemao]').dataset.state === 'alert'", "Yemao in red")
    assert await page.js("document.querySelector('[data-station=lalang]').dataset.state") == "ok"
    http_receiver.wait_for(1, timeout=20)  # the same alert went out to the bureau

    await page.click(f"button.ack[data-alert={json.dumps(alert_id)}]")
    acked = await page.wait(
        f"(document.querySelector({json.dumps(row + ' td.acked')}) || {{}}).textContent", "the acknowledgement"
    )
    assert acked.startswith("li ")
    assert not await page.js(f"document.querySelector('button.ack[data-alert={json.dumps(alert_id)}]')")

    # Silence Yemao's cadmium for 2 hours from the same row: the dialog, a reason, the ledger's silence.
    await page.click(f"button.silence[data-alert={json.dumps(alert_id)}]")
    await page.wait("document.getElementById('silence-dialog').open", "the silence dialog")
    await page.js("document.querySelector('#silence-form input[name=duration]').value = ''")
    await page.type_into("#silence-form input[name=duration]", "2h")
    await page.type_into("#silence-form input[name=reason]", "analyser check by the station operator")
    await page.click("#silence-form button[type=submit]")
    await page.wait("!document.getElementById('silence-dialog').open", "the dialog to close")
    listed = await page.wait("document.querySelector('#silences li')?.textContent", "the silence on the page")
    assert "analyser check by the station operator" in listed and "li" in listed
    # The plume reaches Luodong a day later: the page shows the incident's reach from Yemao to Luodong.
    publish([reading("luodong", T0 + 86400, 0.012)], mosquitto.url)
    await page.wait("document.querySelector('[data-station=luodong]')?.dataset.state === 'alert'", "Luodong in red")
    await page.wait("!!document.querySelector('rect.plume[data-incident]')", "the incident's reach on the river")
    await page.js("window.scrollTo(0, 0)")
    shot = await page.send("Page.captureScreenshot", format="png", captureBeyondViewport=False)
    png = base64.b64decode(shot["data"])
    assert png.startswith(b"\x89PNG") and len(png) > 20_000  # a page, not a blank
    if target := os.environ.get("CONSOLE_SCREENSHOT"):
        Path(target).write_bytes(png)

    out = subprocess.run(
        [sys.executable, "-m", "monitor", "alerts", "--config", str(service.config)],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=service.workdir,
    ).stdout
    assert re.search(rf"{re.escape(alert_id)}\s+firing\s+water\s+serious .* li$", out, re.M), out
    ledger = Ledger(service.workdir / "data" / "alerts.sqlite")
    try:
        assert ("li", "ack", f"alert {alert_id}") in [a[1:4] for a in ledger.audit_log()]
        (silence,) = ledger.silences()
        assert (silence.station, silence.parameter, silence.created_by) == ("yemao", "cd", "li")
        assert abs(silence.until_ns - silence.created_ns - 2 * 3600 * 10**9) < 5 * 10**9
    finally:
        ledger.close()

    await page.goto(base + "?lang=zh")
    await page.wait("document.body.dataset.loaded", "the Chinese page")
    text = await page.js("document.body.innerText")
    assert "值班控制台" in text and "叶茂水电站" in text and "镉" in text and "龙江" in text, text
