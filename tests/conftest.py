"""Real servers for the tests: see bench/servers.py. Missing binaries fail (never skip): run scripts/test."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest

# ``bench`` and ``monitor`` must import under a plain ``pytest`` too, where the repo root is not on sys.path by itself.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.receiver import HttpReceiver
from bench.servers import Alertmanager, InfluxDB1, Mosquitto, ServerError, ServerProcess, Victoria
from monitor.thresholds import ThresholdSet, load, shipped_path

S = TypeVar("S", bound=ServerProcess)


def _run(make: Callable[[], S]) -> Iterator[S]:
    """Start the server, yield it, and stop it by pid (SIGTERM, 5 s, SIGKILL) whatever the test did."""
    try:
        server = make()
        server.start()
    except ServerError as exc:
        pytest.fail(str(exc), pytrace=False)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def thresholds() -> ThresholdSet:
    """The shipped GB 3838-2002 with the Longjiang stations, as the demo runs them."""
    return load([shipped_path(), shipped_path("longjiang-stations.toml")])


@pytest.fixture(scope="session")
def mosquitto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mosquitto]:
    """Shared broker for the session. Tests that stop or restart a broker use ``fresh_mosquitto``."""
    yield from _run(lambda: Mosquitto(tmp_path_factory.mktemp("mosquitto")))


@pytest.fixture
def fresh_mosquitto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mosquitto]:
    """A broker of the test's own, free to ``stop()``, ``kill()`` and ``restart()``."""
    yield from _run(lambda: Mosquitto(tmp_path_factory.mktemp("fresh_mosquitto")))


@pytest.fixture(scope="session")
def victoria(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Victoria]:
    """Shared VictoriaMetrics. A test that ``stop()``s it for an outage must ``start()`` it again (try/finally)."""
    yield from _run(lambda: Victoria(tmp_path_factory.mktemp("victoria")))


@pytest.fixture
def fresh_victoria(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Victoria]:
    """A VictoriaMetrics of the test's own, free to stop for an outage."""
    yield from _run(lambda: Victoria(tmp_path_factory.mktemp("fresh_victoria")))


@pytest.fixture(scope="session")
def influxdb1(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InfluxDB1]:
    """Shared InfluxDB 1.6.7 with auth on; admin credentials in ``.username`` / ``.password``."""
    yield from _run(lambda: InfluxDB1(tmp_path_factory.mktemp("influxdb1"), auth=True))


@pytest.fixture
def http_receiver() -> Iterator[HttpReceiver]:
    """A fresh HTTP receiver per test; ``.json_url()`` is the apprise URL."""
    receiver = HttpReceiver()
    receiver.start()
    try:
        yield receiver
    finally:
        receiver.stop()


@pytest.fixture
def alertmanager(tmp_path_factory: pytest.TempPathFactory, http_receiver: HttpReceiver) -> Iterator[Alertmanager]:
    """A real Alertmanager of the test's own, notifying ``http_receiver`` (firing and resolved, at ``/am``)."""
    webhook = f"{http_receiver.url}/am"
    yield from _run(lambda: Alertmanager(tmp_path_factory.mktemp("alertmanager"), webhook_url=webhook))
