"""The real servers the tests start, under the names the tests import.

The launchers are not test code: they live in ``bench/servers.py`` and ``bench/receiver.py`` and the benchmark
starts the same ones. Nothing here is test-only yet; a helper only tests need belongs in this module, never in
bench (bench imports no test code).
"""

from __future__ import annotations

from bench.receiver import HttpReceiver, ReceivedPost
from bench.servers import (
    HOST,
    HTTPStatusError,
    InfluxDB1,
    Mosquitto,
    ServerError,
    ServerProcess,
    Victoria,
    free_port,
    http_request,
    port_open,
    require_binary,
    terminate,
    wait_port,
)

__all__ = [
    "HOST",
    "HTTPStatusError",
    "HttpReceiver",
    "InfluxDB1",
    "Mosquitto",
    "ReceivedPost",
    "ServerError",
    "ServerProcess",
    "Victoria",
    "free_port",
    "http_request",
    "port_open",
    "require_binary",
    "terminate",
    "wait_port",
]
