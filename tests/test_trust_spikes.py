"""The spike screen is on by default (thresholds/instruments.toml, spike_window = 12), through the service (real
mosquitto, real HTTP receivers): a one-off reading far from a series' own level (a bubble, a relay glitch) is
held for one reading and, when the next goes back, set aside without a word to anyone; a level that stays up
is judged at once and alerts as before."""

from __future__ import annotations

import time

from bench.receiver import HttpReceiver
from bench.servers import Mosquitto
from tests.service_proc import ServiceProcess
from tests.test_two_step_alerting import receivers, send, service  # noqa: F401  (the fixtures)

# Two days of a quiet 2-hourly cadmium analyser (a little noise, so neither flat nor stuck): what the spike
# screen learns the series' level from.
QUIET = [0.0010, 0.0011, 0.0009, 0.0010, 0.0012, 0.0010, 0.0009, 0.0011, 0.0010, 0.0012, 0.0009, 0.0010, 0.0011]


def history(station: str) -> list[tuple[str, float, float]]:
    return [(station, 2.0 * k, v) for k, v in enumerate(QUIET)]


def test_a_one_off_spike_is_set_aside_and_nobody_is_notified(
    service: ServiceProcess,  # noqa: F811
    mosquitto: Mosquitto,
    receivers: dict[str, HttpReceiver],  # noqa: F811
) -> None:
    n = len(QUIET)
    send(mosquitto, *history("yemao"), ("yemao", 2.0 * n, 0.06), ("yemao", 2.0 * (n + 1), 0.0010))
    service.wait(
        lambda: service.metric("riverwatch_readings_evaluated_total") >= n + 1,
        30,
        "the readings after the spike evaluated",
    )
    time.sleep(2)
    assert [p.json["title"] for r in receivers.values() for p in r.posts] == []  # no notice, no withdrawal


def test_a_level_that_stays_up_is_not_a_spike_and_alerts(
    service: ServiceProcess,  # noqa: F811
    mosquitto: Mosquitto,
    receivers: dict[str, HttpReceiver],  # noqa: F811
) -> None:
    n = len(QUIET)
    send(mosquitto, *history("yemao"), ("yemao", 2.0 * n, 0.06), ("yemao", 2.0 * (n + 1), 0.06))
    fired = receivers["bureau"].wait_for(1, timeout=30)[0].json
    assert "FIRING" in fired["title"] and "Yemao" in fired["title"], fired
    assert "0.06 mg/L" in fired["title"] or "0.06" in fired["message"], fired
