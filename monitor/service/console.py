"""The duty officer's console under /console/ on the service's HTTP listener ([console] in the config).

Server-rendered pages and one small script (console_assets/, served from here: no build step, no CDN),
which polls /console/api/state and draws the rivers. Acknowledging and silencing go through the same
ledger calls and checks as `riverwatch ack` and `riverwatch silence add` (monitor.service.ledger_command),
so the audit log says the same whichever way a duty officer took; the actor is the logged-in user.
"""

from __future__ import annotations

import asyncio
import html
import json
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from aiohttp import web

from monitor.alerts.ledger import Ledger, LedgerError
from monitor.config import ConsoleConfig
from monitor.notify.timefmt import parse_offset
from monitor.service.console_auth import Auth, Session, UserFile, csrf_ok, new_token
from monitor.service.console_text import TEXT
from monitor.service.console_view import console_state
from monitor.service.ledger_command import UsageError, silence_parameter, silence_station, silence_until
from monitor.thresholds import ThresholdError, ThresholdSet

log = logging.getLogger("riverwatch.console")

SESSION_COOKIE = "rw_session"
LOGIN_COOKIE = "rw_login"  # the login form's double-submit CSRF token
LANG_COOKIE = "rw_lang"
ASSETS = Path(__file__).resolve().parent / "console_assets"
ASSET_TYPES = {"console.js": "text/javascript", "console.css": "text/css"}
_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    # "no-referrer" would make Chromium send "Origin: null" with the page's own form POSTs, which are refused
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Console:
    def __init__(
        self,
        cfg: ConsoleConfig,
        thresholds: Callable[[], ThresholdSet],
        ledger: Callable[[], Ledger | None],
        utc_offset: str | None = None,
    ) -> None:
        assert cfg.users_file is not None  # the config refuses enabled = true without one
        self.cfg = cfg
        self.thresholds = thresholds
        self.ledger = ledger
        self.users = UserFile(cfg.users_file)
        self.auth = Auth(self.users.current, cfg.session_ns, cfg.idle_ns)
        offset = parse_offset(utc_offset).utcoffset(datetime.now()) or timedelta(0)
        self.offset_min = int(offset.total_seconds() // 60)

    def mount(self, app: web.Application) -> None:
        app.middlewares.append(_secure_headers)
        r = app.router
        r.add_get("/console", _to_console)
        r.add_get("/console/", self.page)
        r.add_get("/console/login", self.login_form)
        r.add_post("/console/login", self.login)
        r.add_post("/console/logout", self.logout)
        r.add_get("/console/api/state", self.state)
        r.add_post("/console/api/ack", self.ack)
        r.add_post("/console/api/silence", self.silence)
        r.add_post("/console/api/silence/expire", self.expire)
        r.add_get("/console/assets/{name}", self.asset)

    # -- helpers ----------------------------------------------------------------------------------------------
    def _lang(self, request: web.Request) -> str:
        lang = request.query.get("lang") or request.cookies.get(LANG_COOKIE) or self.cfg.language
        return lang if lang in TEXT else self.cfg.language

    def _cookie(self, resp: web.StreamResponse, name: str, value: str, max_age: int | None = None) -> None:
        resp.set_cookie(
            name,
            value,
            path="/console/",
            httponly=True,
            samesite="Strict",
            secure=self.cfg.secure_cookie,
            max_age=max_age,
        )

    def _session(self, request: web.Request) -> Session | None:
        return self.auth.session(request.cookies.get(SESSION_COOKIE))

    def _with_lang(self, request: web.Request, resp: web.StreamResponse) -> web.StreamResponse:
        if "lang" in request.query and request.query["lang"] in TEXT:
            self._cookie(resp, LANG_COOKIE, request.query["lang"], max_age=365 * 86400)
        return resp

    async def _posted(self, request: web.Request) -> tuple[Session, dict[str, Any], Ledger] | web.Response:
        """An API POST from a page of this console: its session (CSRF token, origin and role checked), its JSON
        body and the ledger it acts on; or the answer that refuses it."""
        session = self._session(request)
        if session is None:
            return web.json_response({"error": "not logged in"}, status=401)
        if not _same_origin(request) or not csrf_ok(session.csrf, request.headers.get("X-CSRF-Token")):
            return web.json_response({"error": "CSRF token missing or wrong: reload the page"}, status=403)
        if not session.duty:
            return web.json_response({"error": f"{session.user} has the read role"}, status=403)
        try:
            body = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            return web.json_response({"error": "expected a JSON body"}, status=400)
        if not isinstance(body, dict):
            return web.json_response({"error": "expected a JSON object"}, status=400)
        ledger = self.ledger()
        if ledger is None:
            return web.json_response({"error": "the service is starting: no alert ledger yet"}, status=503)
        return session, body, ledger

    # -- pages ------------------------------------------------------------------------------------------------
    async def login_form(self, request: web.Request) -> web.StreamResponse:
        return self._login_page(request, "")

    def _login_page(self, request: web.Request, error: str, status: int = 200) -> web.StreamResponse:
        lang = self._lang(request)
        t = TEXT[lang]
        token = new_token()
        other = "zh" if lang == "en" else "en"
        body = f"""<main class="login">
<h1>{_e(t["title"])}</h1>
<form method="post" action="/console/login">
<input type="hidden" name="csrf" value="{_e(token)}">
<label>{_e(t["user"])} <input name="user" autocomplete="username" required autofocus></label>
<label>{_e(t["password"])} <input name="password" type="password" autocomplete="current-password" required></label>
{f'<p class="error" role="alert">{_e(error)}</p>' if error else ""}
<button type="submit">{_e(t["login"])}</button>
</form>
<p><a href="/console/login?lang={other}">{_e(t["other_language"])}</a></p>
</main>"""
        resp = web.Response(text=_document(lang, t["title"], body), content_type="text/html", status=status)
        self._cookie(resp, LOGIN_COOKIE, token, max_age=3600)
        return self._with_lang(request, resp)

    async def login(self, request: web.Request) -> web.StreamResponse:
        t = TEXT[self._lang(request)]
        form = await request.post()
        name, password, token = (str(form.get(k, "")) for k in ("user", "password", "csrf"))
        if not _same_origin(request) or not csrf_ok(request.cookies.get(LOGIN_COOKIE, ""), token):
            return self._login_page(request, t["expired"], status=403)
        if self.auth.locked(name):
            return self._login_page(request, t["locked"], status=429)
        session = await asyncio.to_thread(self.auth.login, name, password)  # argon2 takes tens of ms
        if session is None:
            log.warning("console: failed login for %r from %s", name[:64], request.remote)
            locked = self.auth.locked(name)
            return self._login_page(request, t["locked"] if locked else t["bad_login"], status=429 if locked else 401)
        log.info("console: %s logged in (%s) from %s", session.user, session.role, request.remote)
        resp = _redirect("/console/")
        self._cookie(resp, SESSION_COOKIE, session.token)
        resp.del_cookie(LOGIN_COOKIE, path="/console/")
        return resp

    async def logout(self, request: web.Request) -> web.StreamResponse:
        session = self._session(request)
        form = await request.post()
        if session is not None and _same_origin(request) and csrf_ok(session.csrf, str(form.get("csrf", ""))):
            self.auth.logout(session.token)
            log.info("console: %s logged out", session.user)
        resp = _redirect("/console/login")
        resp.del_cookie(SESSION_COOKIE, path="/console/")
        return resp

    async def page(self, request: web.Request) -> web.StreamResponse:
        session = self._session(request)
        if session is None:
            return self._with_lang(request, _redirect("/console/login"))
        lang = self._lang(request)
        t = TEXT[lang]
        other = "zh" if lang == "en" else "en"
        setup = {
            "lang": lang,
            "text": t,
            "csrf": session.csrf,
            "duty": session.duty,
            "user": session.user,
            "poll_ms": self.cfg.poll_ns // 10**6,
            "offset_min": self.offset_min,
        }
        role = t["role_duty"] if session.duty else t["role_read"]
        sections = "\n".join(
            f'<section id="{sid}"><h2>{_e(t[sid])}</h2><div class="body"></div></section>'
            for sid in ("rivers", "incidents", "water", "sensor", "silences", "history", "audit")
        )
        body = f"""<header>
<h1>{_e(t["title"])}</h1>
<span class="who">{_e(session.user)} · {_e(role)}</span>
<a class="lang" href="/console/?lang={other}">{_e(t["other_language"])}</a>
<form method="post" action="/console/logout"><input type="hidden" name="csrf" value="{_e(session.csrf)}">
<button type="submit">{_e(t["logout"])}</button></form>
<span id="status" role="status"></span>
</header>
<main>
{sections}
</main>
<dialog id="silence-dialog"><form method="dialog" id="silence-form">
<h2>{_e(t["silence"])} <span class="target"></span></h2>
<label>{_e(t["duration"])} <input name="duration" value="6h" required></label>
<label>{_e(t["reason"])} <input name="reason" required></label>
<p class="error" role="alert"></p>
<button type="submit" value="save">{_e(t["save"])}</button>
<button type="button" class="cancel">{_e(t["cancel"])}</button>
</form></dialog>
<script id="setup" type="application/json">{_json_in_html(setup)}</script>
<script src="/console/assets/console.js"></script>"""
        resp = web.Response(text=_document(lang, t["title"], body), content_type="text/html")
        return self._with_lang(request, resp)

    async def asset(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        if name not in ASSET_TYPES:
            raise web.HTTPNotFound()
        body = await asyncio.to_thread((ASSETS / name).read_bytes)
        return web.Response(body=body, headers={"Content-Type": f"{ASSET_TYPES[name]}; charset=utf-8"})

    # -- the API ----------------------------------------------------------------------------------------------
    async def state(self, request: web.Request) -> web.StreamResponse:
        if self._session(request) is None:
            return web.json_response({"error": "not logged in"}, status=401)
        ledger = self.ledger()
        if ledger is None:
            return web.json_response({"error": "the service is starting: no alert ledger yet"}, status=503)
        doc = await asyncio.to_thread(console_state, self.thresholds(), ledger, time.time_ns())
        return web.json_response(doc)

    async def ack(self, request: web.Request) -> web.StreamResponse:
        posted = await self._posted(request)
        if isinstance(posted, web.Response):
            return posted
        session, body, ledger = posted
        alert_id = body.get("alert")
        if not isinstance(alert_id, str):
            return web.json_response({"error": 'expected {"alert": id}'}, status=400)
        try:
            a = await asyncio.to_thread(ledger.ack, alert_id, session.user)
        except LedgerError as e:
            return web.json_response({"error": str(e)}, status=409)
        log.info("console: %s acknowledged %s", session.user, alert_id)
        return web.json_response({"alert": a.alert_id, "acked_by": a.acked_by, "acked_ns": a.acked_ns})

    async def silence(self, request: web.Request) -> web.StreamResponse:
        posted = await self._posted(request)
        if isinstance(posted, web.Response):
            return posted
        session, body, ledger = posted
        station, parameter = body.get("station"), body.get("parameter") or None
        duration, reason = body.get("duration"), body.get("reason")
        if not isinstance(station, str) or not isinstance(duration, str) or not isinstance(parameter, str | None):
            return web.json_response({"error": "expected station, duration (6h, 90min) and reason"}, status=400)
        if not isinstance(reason, str) or not reason.strip():
            return web.json_response({"error": TEXT[self._lang(request)]["reason_needed"]}, status=400)
        ts = self.thresholds()
        try:
            until = silence_until(duration, None)
            sid = await asyncio.to_thread(
                ledger.add_silence,
                silence_station(station, ts),
                silence_parameter(parameter, ts),
                until,
                reason.strip(),
                session.user,
            )
        except (UsageError, LedgerError, ThresholdError) as e:
            return web.json_response({"error": str(e).replace("--", "")}, status=400)
        log.info("console: %s silenced %s/%s (silence %d)", session.user, station, parameter or "*", sid)
        return web.json_response({"silence": sid, "until_ns": until})

    async def expire(self, request: web.Request) -> web.StreamResponse:
        """End a silence now, as `riverwatch silence expire` does."""
        posted = await self._posted(request)
        if isinstance(posted, web.Response):
            return posted
        session, body, ledger = posted
        sid = body.get("silence")
        if not isinstance(sid, int) or isinstance(sid, bool):
            return web.json_response({"error": 'expected {"silence": id}'}, status=400)
        try:
            await asyncio.to_thread(ledger.expire_silence, sid, session.user)
        except LedgerError as e:
            return web.json_response({"error": str(e)}, status=409)
        log.info("console: %s expired silence %d", session.user, sid)
        return web.json_response({"silence": sid})


@web.middleware
async def _secure_headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    resp = await handler(request)
    if request.path.startswith("/console"):
        resp.headers.update(_HEADERS)
        if not request.path.startswith("/console/assets/"):
            resp.headers["Cache-Control"] = "no-store"
    return resp


async def _to_console(_: web.Request) -> web.StreamResponse:
    return _redirect("/console/")


def _same_origin(request: web.Request) -> bool:
    """A POST whose Origin (sent by every current browser on a POST) is another site's is refused."""
    origin = request.headers.get("Origin")
    if origin is None or origin == "null":
        return origin is None
    return origin.split("://", 1)[-1] == request.host


def _redirect(to: str) -> web.Response:
    return web.Response(status=303, headers={"Location": to})


def _e(text: str) -> str:
    return html.escape(text, quote=True)


def _json_in_html(data: object) -> str:
    """JSON inside <script type="application/json">: no "</script>" or "<!--" can end it early."""
    return json.dumps(data, ensure_ascii=False).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _document(lang: str, title: str, body: str) -> str:
    return f"""<!doctype html>
<html lang="{"zh-CN" if lang == "zh" else "en"}">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{_e(title)}</title><link rel="stylesheet" href="/console/assets/console.css"></head>
<body>
{body}
</body>
</html>
"""
