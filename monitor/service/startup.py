"""What the service says it is doing: one line at start-up, one after each reload.

An operator reading the log after a restart should see at once which stations and rules are in force, where
notifications go and where readings come from, without a secret in sight (targets by id and apprise's privacy
form, broker URLs without their user part).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from monitor.config import Config
from monitor.notify.routes import Target, private_url
from monitor.thresholds import ThresholdSet


@dataclass(frozen=True)
class RulesInForce:
    """What a ThresholdSet makes the rules check: enough to say it in a line and to tell what a reload changed."""

    stations: frozenset[str]
    standards: tuple[str, ...]
    limit_checks: int  # (station, parameter) pairs with a limit in force
    rules: tuple[tuple[str, int], ...]  # [[rules]] per kind, sorted

    def describe(self, default_class: str) -> str:
        kinds = ", ".join(f"{n} {k}" for k, n in self.rules) or "none"
        return (
            f"{len(self.stations)} stations; {self.limit_checks} limit checks "
            f"({', '.join(self.standards) or 'no standard'}, default class {default_class}); rules: {kinds}"
        )


def rules_in_force(ts: ThresholdSet, default_class: str) -> RulesInForce:
    checks = sum(1 for s in ts.stations for p in ts.catalogue if ts.spec(s, p, default_class) is not None)
    return RulesInForce(
        stations=frozenset(ts.stations),
        standards=tuple(dict.fromkeys(s.id for s in ts.standards)),
        limit_checks=checks,
        rules=tuple(sorted(Counter(r.kind for r in ts.rules).items())),
    )


def changes(old: RulesInForce, new: RulesInForce) -> str:
    """What a reload changed, in a few words ("no change" when nothing a count shows did)."""
    parts: list[str] = []
    if added := sorted(new.stations - old.stations):
        parts.append("stations added: " + ", ".join(_few(added)))
    if removed := sorted(old.stations - new.stations):
        parts.append("stations removed: " + ", ".join(_few(removed)))
    if new.limit_checks != old.limit_checks:
        parts.append(f"limit checks {old.limit_checks} -> {new.limit_checks}")
    if new.rules != old.rules:
        parts.append(f"rules {sum(n for _, n in old.rules)} -> {sum(n for _, n in new.rules)}")
    if new.standards != old.standards:
        parts.append("standards: " + ", ".join(new.standards))
    return "; ".join(parts) or "no change in stations, limits or rules"


def targets_text(targets: Sequence[Target]) -> str:
    if not targets:
        return "targets: none (alerts are journaled and kept in the ledger, nobody is notified)"
    # apprise's privacy form without its query (options such as method=POST&retry=0 say nothing about who)
    named = (f"{t.id} {private_url(t.url).split('?', 1)[0]}" for t in targets)
    return f"targets: {len(targets)} (" + ", ".join(named) + ")"


def inputs_text(cfg: Config) -> str:
    m = cfg.mqtt
    broker = "embedded broker " + _no_user(m.url) if m.embedded else _no_user(m.url)
    text = f"inputs: MQTT {broker} topics {', '.join(m.topics)} (QoS {m.qos}, client id {m.client_id})"
    if cfg.hj212.enabled:
        text += f", HJ 212 on {cfg.hj212.listen}:{cfg.hj212.port}"
    return text


def startup_line(
    version: str, cfg: Config, rules: RulesInForce, targets: Sequence[Target], threshold_paths: Sequence[Path]
) -> str:
    files = ", ".join(str(p) for p in threshold_paths)
    store = _no_user(cfg.influxdb.url) if cfg.influxdb is not None else "embedded store"
    return (
        f"riverwatch {version} starting: {rules.describe(cfg.thresholds.default_class)} (from {files}); "
        f"{targets_text(targets)}; {inputs_text(cfg)}; database {store}; data dir {cfg.service.data_dir.resolve()}"
    )


def _no_user(url: str) -> str:
    """A URL without its user part: a password may be written there."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def _few(names: Sequence[str], most: int = 5) -> list[str]:
    return list(names[:most]) + ([f"and {len(names) - most} more"] if len(names) > most else [])
