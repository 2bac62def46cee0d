"""The console's logic: who gets in (argon2id hashes, lockout, session expiry, CSRF), the [console] config,
and the HTTP API against a real ledger on a real aiohttp server: a POST without the session's CSRF token,
from another origin or by a read-only user changes nothing; a duty user's acknowledgement and silence land
in the ledger and its audit log as the CLI's do."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import pytest_asyncio
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from monitor.alerts.evaluator import AlertEvent
from monitor.alerts.ledger import Ledger
from monitor.config import ConfigError, ConsoleConfig, ConsoleUser, load_config
from monitor.service.console import Console
from monitor.service.console_auth import LOCKOUT_NS, MAX_FAILURES, Auth, UserFile, csrf_ok, hash_password
from monitor.service.console_command import write_users
from monitor.service.console_view import console_state, station_state
from monitor.thresholds import ThresholdSet, load, shipped_path

THRESHOLDS = load([shipped_path(), shipped_path("longjiang-stations.toml")])
T0 = 1326585600 * 10**9
PASSWORD = "correct horse battery"
ADD_USER = (sys.executable, "-m", "monitor", "console", "add-user")


def event(station: str, state: str = "firing", category: str = "water", parameter: str = "cd") -> AlertEvent:
    limit = THRESHOLDS.limit(station, "cd", "III")
    assert limit is not None
    aid = f"{station}/{parameter}/{category}"
    return AlertEvent(aid, state, station, parameter, T0, 0.03, 6.0, "serious", limit, T0, 0.03, 6.0, category=category)


@pytest.fixture(scope="module")
def users_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("users") / "users.toml"
    h = hash_password(PASSWORD)
    write_users(path, {"li": ConsoleUser("li", h, "duty"), "wang": ConsoleUser("wang", h, "read")})
    return path


# -- config ---------------------------------------------------------------------------------------------------
def write_config(tmp_path: Path, console: str, service: str = "") -> Path:
    path = tmp_path / "riverwatch.toml"
    path.write_text(f"[service]\n{service}\n[console]\n{console}\n", encoding="utf-8")
    return path


def test_console_is_off_by_default_and_refuses_to_start_without_users(tmp_path: Path, users_file: Path) -> None:
    assert load_config(None).console.enabled is False
    with pytest.raises(ConfigError, match=re.escape("[console].users_file: required with enabled = true")):
        load_config(write_config(tmp_path, "enabled = true"))
    with pytest.raises(ConfigError, match=r"\[console\]\.users_file: .*nobody\.toml: cannot read"):
        load_config(write_config(tmp_path, 'enabled = true\nusers_file = "nobody.toml"'))
    with pytest.raises(ConfigError, match=re.escape("[console].enabled: the console is served on [service].http_")):
        load_config(write_config(tmp_path, f'enabled = true\nusers_file = "{users_file}"', 'http_listen = ""'))
    cfg = load_config(write_config(tmp_path, f'enabled = true\nusers_file = "{users_file}"\nsession = "8h"'))
    assert cfg.console.enabled and cfg.console.session_ns == 8 * 3600 * 10**9


@pytest.mark.parametrize(
    ("entry", "error"),
    [
        ('password_hash = "hunter2hunter2"\nrole = "duty"', "users.li.password_hash: expected an argon2 hash"),
        ('password_hash = "$argon2id$x"\nrole = "admin"', "users.li.role: must be one of read, duty"),
        ('password_hash = "$argon2id$x"\npassword = "x"', "users.li.password: unknown key"),
    ],
)
def test_a_wrong_users_file_names_the_user_and_key(tmp_path: Path, entry: str, error: str) -> None:
    users = tmp_path / "users.toml"
    users.write_text(f"[users.li]\n{entry}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=re.escape(error)):
        load_config(write_config(tmp_path, f'enabled = true\nusers_file = "{users}"'))


def test_run_exits_2_naming_the_key(tmp_path: Path) -> None:
    path = write_config(tmp_path, "enabled = true")
    proc = subprocess.run(
        [sys.executable, "-m", "monitor", "run", "--config", str(path)], capture_output=True, text=True, timeout=30
    )
    assert proc.returncode == 2
    assert f"{path}: [console].users_file: required" in proc.stderr


def test_add_user_writes_a_hash_that_logs_in_and_keeps_the_others(tmp_path: Path) -> None:
    users = tmp_path / "users.json"
    for name, role in (("li", "duty"), ("wang", "read")):
        proc = subprocess.run(
            [*ADD_USER, name, "--role", role, "--users-file", str(users), "--password-stdin"],
            input=f"{PASSWORD}-{name}\n",
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert proc.returncode == 0, proc.stderr
    assert PASSWORD not in users.read_text()
    assert users.stat().st_mode & 0o077 == 0  # hashes are still for the owner's eyes only
    auth = Auth(UserFile(users).current, 3600 * 10**9, 3600 * 10**9)
    li = auth.login("li", f"{PASSWORD}-li")
    assert li is not None and li.duty
    assert auth.login("li", f"{PASSWORD}-wang") is None
    wang = auth.login("wang", f"{PASSWORD}-wang")
    assert wang is not None and not wang.duty
    short = subprocess.run(
        [*ADD_USER, "x", "--users-file", str(users), "--password-stdin"],
        input="short\n",
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert short.returncode == 2 and "at least 10 characters" in short.stderr


# -- auth -----------------------------------------------------------------------------------------------------
@dataclass
class Clock:
    now: int = 10**12

    def __call__(self) -> int:
        return self.now


def test_lockout_after_wrong_passwords_even_for_the_right_one(users_file: Path) -> None:
    clock = Clock()
    auth = Auth(UserFile(users_file).current, 3600 * 10**9, 3600 * 10**9, clock=clock)
    for _ in range(MAX_FAILURES):
        assert auth.login("li", "guess") is None
    assert auth.locked("li")
    assert auth.login("li", PASSWORD) is None  # locked: the right password does not help
    assert auth.login("wang", PASSWORD) is not None  # another name is not locked
    clock.now += LOCKOUT_NS
    assert auth.login("li", PASSWORD) is not None
    assert auth.login("nobody", PASSWORD) is None


def test_sessions_end_when_idle_when_old_and_when_the_user_goes(tmp_path: Path) -> None:
    users = tmp_path / "users.toml"
    h = hash_password(PASSWORD)
    write_users(users, {"li": ConsoleUser("li", h, "duty"), "wang": ConsoleUser("wang", h, "duty")})
    clock = Clock()
    minute = 60 * 10**9
    auth = Auth(UserFile(users).current, session_ns=30 * minute, idle_ns=10 * minute, clock=clock)
    s = auth.login("li", PASSWORD)
    assert s is not None
    for _ in range(2):  # a page in use keeps its session ...
        clock.now += 9 * minute
        assert auth.session(s.token) is s
    clock.now += 10 * minute  # ... until it is idle too long
    assert auth.session(s.token) is None
    s = auth.login("li", PASSWORD)
    assert s is not None
    for _ in range(3):
        clock.now += 9 * minute
        assert auth.session(s.token) is s
    clock.now += 3 * minute  # 30 min in all: log in again, however busy
    assert auth.session(s.token) is None
    s = auth.login("li", PASSWORD)
    w = auth.login("wang", PASSWORD)
    assert s is not None and w is not None
    write_users(users, {"li": ConsoleUser("li", h, "read")})  # wang removed, li demoted
    assert auth.session(s.token) is None and auth.session(w.token) is None
    again = auth.login("li", PASSWORD)
    assert again is not None and not again.duty
    assert auth.session("not-a-token") is None and auth.session(None) is None


def test_csrf_tokens() -> None:
    assert csrf_ok("abc", "abc")
    assert not csrf_ok("abc", "abd") and not csrf_ok("abc", None) and not csrf_ok("", "")


# -- what the page shows ----------------------------------------------------------------------------------------
def test_station_state_is_the_worst_open_alert(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "alerts.sqlite")
    ledger.record(event("lalang", "unconfirmed"))
    ledger.record(event("yemao", "unconfirmed"))
    ledger.record(event("yemao", "firing", "sensor", "do"))
    ledger.record(event("luodong", "firing"))
    ledger.record(event("luodong", "firing", "sensor", "do"))
    ledger.record(event("sancha", "resolved"))
    doc = console_state(THRESHOLDS, ledger, T0)
    (river,) = doc["rivers"]
    states = {s["id"]: s["state"] for s in river["stations"]}
    assert states == {
        "lalang": "notice",
        "yemao": "sensor",
        "luodong": "alert",
        "sancha": "ok",
        "nuomitan": "ok",
        "liuzhou-hexi": "ok",
    }
    assert [s["km"] for s in river["stations"]] == [0.0, 25.0, 57.0, 80.0, 100.0, 160.0]  # downstream order
    assert river["name_zh"] == "龙江" and river["stations"][1]["name_zh"] == "叶茂水电站"
    assert {a["id"] for a in doc["sensor"]} == {"yemao/do/sensor", "luodong/do/sensor"}
    assert {a["id"] for a in doc["water"]} == {"lalang/cd/water", "yemao/cd/water", "luodong/cd/water"}
    assert [a["id"] for a in doc["history"]] == ["sancha/cd/water"]
    assert doc["water"][0]["parameter_name_zh"] == "镉"
    assert station_state([]) == "ok"


# -- the HTTP API -----------------------------------------------------------------------------------------------
@dataclass
class Served:
    client: TestClient[web.Request, web.Application]
    ledger: Ledger


@pytest_asyncio.fixture
async def served(tmp_path: Path, users_file: Path) -> AsyncIterator[Served]:
    ledger = Ledger(tmp_path / "alerts.sqlite")
    ledger.record(event("yemao"))
    ts: ThresholdSet = THRESHOLDS
    console = Console(ConsoleConfig(enabled=True, users_file=users_file), lambda: ts, lambda: ledger, "+08:00")
    app = web.Application()
    console.mount(app)
    client = TestClient(TestServer(app, host="127.0.0.1"))
    await client.start_server()
    try:
        yield Served(client, ledger)
    finally:
        await client.close()
        ledger.close()


async def log_in(c: TestClient[web.Request, web.Application], user: str, password: str = PASSWORD) -> str:
    """Log in through the form; the CSRF token of the session, from the page."""
    form = await c.get("/console/login")
    token = re.search(r'name="csrf" value="([^"]+)"', await form.text())
    assert token is not None
    r = await c.post("/console/login", data={"user": user, "password": password, "csrf": token[1]})
    page = await r.text()
    assert r.status == 200 and r.url.path == "/console/", page
    found = re.search(r'"csrf": "([^"]+)"', page)
    assert found is not None
    return found[1]


@pytest.mark.asyncio
async def test_login_sets_a_strict_httponly_cookie_and_needs_the_form_token(served: Served) -> None:
    c = served.client
    r = await c.get("/console/", allow_redirects=False)
    assert r.status == 303 and r.headers["Location"] == "/console/login"
    assert (await c.get("/console/api/state")).status == 401
    c.session.cookie_jar.clear()
    forged = await c.post("/console/login", data={"user": "li", "password": PASSWORD, "csrf": "x"})
    assert forged.status == 403  # no login cookie matching the field
    form = await c.get("/console/login")
    token = re.search(r'name="csrf" value="([^"]+)"', await form.text())
    assert token is not None
    wrong = await c.post("/console/login", data={"user": "li", "password": "nope", "csrf": token[1]})
    assert wrong.status == 401 and "Wrong user or password" in await wrong.text()
    form = await c.get("/console/login")
    token = re.search(r'name="csrf" value="([^"]+)"', await form.text())
    assert token is not None
    r = await c.post(
        "/console/login", data={"user": "li", "password": PASSWORD, "csrf": token[1]}, allow_redirects=False
    )
    assert r.status == 303
    cookie = next(h for h in r.headers.getall("Set-Cookie") if h.startswith("rw_session="))
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/console/" in cookie
    assert (await c.get("/console/api/state")).status == 200
    page = await c.get("/console/")
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]


@pytest.mark.asyncio
async def test_a_post_without_the_token_or_from_elsewhere_changes_nothing(served: Served) -> None:
    c = served.client
    csrf = await log_in(c, "li")
    body = {"alert": "yemao/cd/water"}
    assert (await c.post("/console/api/ack", json=body)).status == 403
    assert (await c.post("/console/api/ack", json=body, headers={"X-CSRF-Token": "guess"})).status == 403
    other = {"X-CSRF-Token": csrf, "Origin": "http://evil.example"}
    assert (await c.post("/console/api/ack", json=body, headers=other)).status == 403
    assert served.ledger.get("yemao/cd/water").acked_by is None
    r = await c.post("/console/api/ack", json=body, headers={"X-CSRF-Token": csrf})
    assert r.status == 200, await r.text()
    assert served.ledger.get("yemao/cd/water").acked_by == "li"
    assert ("li", "ack", "alert yemao/cd/water") in [a[1:4] for a in served.ledger.audit_log()]
    again = await c.post("/console/api/ack", json={"alert": "nope"}, headers={"X-CSRF-Token": csrf})
    assert again.status == 409 and "no alert nope" in (await again.json())["error"]


@pytest.mark.asyncio
async def test_read_role_sees_but_cannot_act(served: Served) -> None:
    c = served.client
    csrf = await log_in(c, "wang")
    state = await (await c.get("/console/api/state")).json()
    assert [a["id"] for a in state["water"]] == ["yemao/cd/water"]
    r = await c.post("/console/api/ack", json={"alert": "yemao/cd/water"}, headers={"X-CSRF-Token": csrf})
    assert r.status == 403 and "read role" in (await r.json())["error"]
    assert served.ledger.get("yemao/cd/water").acked_by is None


@pytest.mark.asyncio
async def test_silence_resolves_the_parameter_and_refuses_unknown_stations(served: Served) -> None:
    c = served.client
    csrf = await log_in(c, "li")
    h = {"X-CSRF-Token": csrf}
    bad = await c.post("/console/api/silence", json={"station": "yemoa", "duration": "6h", "reason": "x"}, headers=h)
    assert bad.status == 400 and "did you mean yemao" in (await bad.json())["error"]
    bad = await c.post("/console/api/silence", json={"station": "yemao", "duration": "soon", "reason": "x"}, headers=h)
    assert bad.status == 400 and "not a duration" in (await bad.json())["error"]
    bad = await c.post("/console/api/silence", json={"station": "yemao", "duration": "6h", "reason": " "}, headers=h)
    assert bad.status == 400
    r = await c.post(
        "/console/api/silence",
        json={"station": "yemao", "parameter": "cadmium", "duration": "2h", "reason": "analyser maintenance"},
        headers=h,
    )
    assert r.status == 200, await r.text()
    (s,) = served.ledger.silences()
    assert (s.station, s.parameter, s.created_by, s.reason) == ("yemao", "cd", "li", "analyser maintenance")
    assert abs((s.until_ns - s.created_ns) - 2 * 3600 * 10**9) < 10**9
    state = await (await c.get("/console/api/state")).json()
    assert state["water"][0]["silenced"] is True
    assert state["audit"][0]["action"] == "silence add" and state["audit"][0]["by"] == "li"
    r = await c.post("/console/api/silence/expire", json={"silence": s.id}, headers=h)
    assert r.status == 200, await r.text()
    assert served.ledger.silences() == []
    assert ("li", "silence expire", f"silence {s.id}") in [a[1:4] for a in served.ledger.audit_log()]
    again = await c.post("/console/api/silence/expire", json={"silence": s.id}, headers=h)
    assert again.status == 409 and f"no active silence {s.id}" in (await again.json())["error"]


@pytest.mark.asyncio
async def test_logout_ends_the_session(served: Served) -> None:
    c = served.client
    csrf = await log_in(c, "li")
    cookie = c.session.cookie_jar.filter_cookies(c.make_url("/console/"))["rw_session"].value
    r = await c.post("/console/logout", data={"csrf": csrf}, allow_redirects=False)
    assert r.status == 303
    c.session.cookie_jar.update_cookies({"rw_session": cookie})  # the old cookie, replayed
    assert (await c.get("/console/api/state")).status == 401


@pytest.mark.asyncio
async def test_the_page_is_in_the_chosen_language(served: Served) -> None:
    c = served.client
    await log_in(c, "li")
    zh = await (await c.get("/console/?lang=zh")).text()
    assert "值班控制台" in zh and '<html lang="zh-CN">' in zh
    again = await (await c.get("/console/")).text()  # the choice is kept
    assert "值班控制台" in again
    js = await c.get("/console/assets/console.js")
    assert js.status == 200 and js.headers["Content-Type"].startswith("text/javascript")
    assert (await c.get("/console/assets/..%2Fconsole.py")).status == 404
