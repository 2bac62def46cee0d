"""The service's HTTP side: /healthz (ok and degraded are 200, unhealthy is 503) and /metrics (Prometheus)."""

from __future__ import annotations

import asyncio
import errno
import json
import logging
from collections.abc import Callable, Sequence

from aiohttp import web

from monitor.metrics import Metrics

log = logging.getLogger("riverwatch.service")


class ListenError(Exception):
    """The HTTP port cannot be had (in use, not permitted): a configuration problem, exit 2 at start."""


async def start_http(
    listen: str, metrics: Metrics, mounts: Sequence[Callable[[web.Application], None]] = ()
) -> web.AppRunner | None:
    """Serve on `host:port`; None when `listen` is empty (the endpoint is disabled). `mounts` add their routes
    (the console)."""
    if not listen:
        return None
    host, _, port = listen.rpartition(":")

    async def healthz(_: web.Request) -> web.Response:
        report = metrics.health.report()
        return web.Response(
            text=json.dumps(report),
            content_type="application/json",
            status=503 if report["status"] == "unhealthy" else 200,
        )

    async def exposition(_: web.Request) -> web.Response:
        body = await asyncio.to_thread(metrics.exposition)
        return web.Response(body=body, headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"})

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", exposition)
    for mount in mounts:
        mount(app)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, int(port)).start()
    except OSError as e:
        await runner.cleanup()
        why = (
            "address already in use (another riverwatch, or another program?)"
            if e.errno == errno.EADDRINUSE
            else (e.strerror or str(e))
        )
        raise ListenError(
            f'[service].http_listen {listen}: {why}; choose a free port, or http_listen = "" to disable /healthz '
            "and /metrics"
        ) from None
    log.info("serving /healthz and /metrics%s on http://%s", " and /console/" if mounts else "", listen)
    return runner
