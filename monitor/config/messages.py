"""What messages say, in the bureau's own terms: `[notify.templates]`, severity labels, and a route's own
"what to do" lines. Read from the `[notify]` table and each `[[notify.route]]` by `monitor.config.notify`.

Templates are Jinja2, sandboxed, with undefined names an error: each is compiled here and rendered once with
sample values, so a syntax error or an unknown variable stops the start-up with the file, table and key, and
a loaded config never fails to render (monitor.notify.templates)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from jinja2 import StrictUndefined, TemplateError, meta
from jinja2.sandbox import ImmutableSandboxedEnvironment

from monitor.config.section import Section

LANGUAGES = ("en", "zh")
TIERS = ("warning", "serious", "critical")

# Three tiers, four levels of the Chinese emergency plans (国家突发环境事件应急预案): Ⅰ级 (特别重大) is declared
# by the government on consequences (a city's water supply stopped, casualties) that no ratio to a limit can
# establish, so a monitor never claims it: the tiers take Ⅳ-Ⅱ, and a bureau whose plan says otherwise maps
# critical to 红色预警 in [notify.severity_labels.zh].
SEVERITY_PROFILES: Mapping[str, Mapping[str, Mapping[str, str]]] = {
    "standard": {
        "en": {"warning": "warning", "serious": "serious", "critical": "critical"},
        "zh": {"warning": "一般", "serious": "较重", "critical": "严重"},
    },
    "cn-emergency": {
        "en": {
            "warning": "blue alert (level IV)",
            "serious": "yellow alert (level III)",
            "critical": "orange alert (level II)",
        },
        "zh": {
            "warning": "蓝色预警（Ⅳ级，一般）",
            "serious": "黄色预警（Ⅲ级，较大）",
            "critical": "橙色预警（Ⅱ级，重大）",
        },
    },
}
# Without severity_profile: English keeps its tier names, Chinese uses the emergency plans' levels.
_DEFAULT_LABELS = {"en": SEVERITY_PROFILES["standard"]["en"], "zh": SEVERITY_PROFILES["cn-emergency"]["zh"]}

# What a "what to do" template may use (interface.md lists them): every value is a string, "" when unknown.
TEMPLATE_VARIABLES: Mapping[str, str] = {
    "alert_id": "the alert's id (sancha/cd/20120120T0200Z)",
    "station": "the station's name in the message's language",
    "station_id": "the station's id",
    "river": "the river's name in the message's language",
    "parameter": "the parameter's name in the message's language",
    "parameter_id": "the parameter's id (cd)",
    "state": "the transition in the message's language (告警, firing)",
    "state_id": "firing, escalated, resolved, unconfirmed, withdrawn, issued, updated",
    "category": "water, sensor or forecast",
    "severity": "the severity label (蓝色预警（Ⅳ级，一般）, warning)",
    "severity_id": "warning, serious or critical",
    "value": "the reading, with its unit",
    "ratio": "times the limit (3.1)",
    "incident": "the incident's id, or empty",
    "console_url": "[notify].console_url, or the route's own",
    "duty_phone": "[notify].duty_phone, or the route's own",
    "ack_command": "the command that acknowledges this alert",
    "language": "en or zh",
}
_SAMPLE = {k: "x" for k in TEMPLATE_VARIABLES} | {"state_id": "firing", "category": "water", "language": "en"}

# The shipped default ("ack"): how to stop the repeats of a firing alert, and the console where there is one.
BUILTIN_TEMPLATES: Mapping[str, Mapping[str, str]] = {
    "ack": {
        "en": '{% if state_id in ("firing", "escalated") %}Acknowledge: {{ ack_command }}{% endif %}\n'
        "{% if console_url %}Console: {{ console_url }}{% endif %}\n"
        "{% if duty_phone %}Duty phone: {{ duty_phone }}{% endif %}",
        "zh": '{% if state_id in ("firing", "escalated") %}确认：{{ ack_command }}{% endif %}\n'
        "{% if console_url %}值班平台：{{ console_url }}{% endif %}\n"
        "{% if duty_phone %}值班电话：{{ duty_phone }}{% endif %}",
    },
}

_ENV = ImmutableSandboxedEnvironment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=False)


@dataclass(frozen=True)
class Template:
    """One "what to do" template, compiled per language (one text for all, or a text per language)."""

    name: str
    compiled: Mapping[str, Any] = field(compare=False, repr=False)  # language -> jinja2.Template

    def render(self, language: str, values: Mapping[str, str]) -> list[str]:
        t = self.compiled.get(language) or self.compiled.get("en") or next(iter(self.compiled.values()))
        return [line.strip() for line in t.render(values).splitlines() if line.strip()]


def compile_template(s: Section, key: str, name: str, text: Any) -> Template:
    """A template from a string (every language) or a table of strings per language, checked now."""
    texts = {lang: text for lang in LANGUAGES} if isinstance(text, str) else text
    if not isinstance(texts, dict) or not texts or not all(isinstance(v, str) for v in texts.values()):
        raise s.err(key, "expected a template string, or a table of them per language (en, zh)")
    unknown_lang = sorted(set(texts) - set(LANGUAGES))
    if unknown_lang:
        raise s.err(key, f'unknown language "{unknown_lang[0]}": expected {", ".join(LANGUAGES)}')
    compiled: dict[str, Any] = {}
    for lang, src in texts.items():
        try:
            unknown = sorted(meta.find_undeclared_variables(_ENV.parse(src)) - set(TEMPLATE_VARIABLES))
            if unknown:
                raise s.err(key, f'unknown variable "{unknown[0]}"; known: {", ".join(TEMPLATE_VARIABLES)}')
            compiled[lang] = _ENV.from_string(src)
            compiled[lang].render(_SAMPLE)
        except TemplateError as e:
            lineno = getattr(e, "lineno", None)
            line = f" (line {lineno})" if lineno else ""
            raise s.err(key, f"template error{line}: {e.message or type(e).__name__}") from None
    return Template(name, MappingProxyType(compiled))


@dataclass(frozen=True)
class MessagesConfig:
    """The keys of `[notify]` about message wording."""

    # language -> tier -> label, resolved from severity_profile and [notify.severity_labels.<language>]
    severity_labels: Mapping[str, Mapping[str, str]] = field(default_factory=lambda: dict(_DEFAULT_LABELS))
    templates: Mapping[str, Template] = field(default_factory=lambda: dict(builtin_templates()))
    template: str = "ack"  # the routes' default "what to do" template; "" = none
    console_url: str = ""
    duty_phone: str = ""

    def label(self, severity: str, language: str) -> str:
        return self.severity_labels.get(language, {}).get(severity, severity)


@dataclass(frozen=True)
class RouteMessages:
    """The keys of one `[[notify.route]]` about message wording: its template (a name, or its own text)."""

    template: str | None = None  # a name in [notify.templates]; None = [notify].template, "" = none
    own: Template | None = None  # what_to_do = "...": the route's own template
    console_url: str | None = None
    duty_phone: str | None = None


_BUILTINS: dict[str, Template] = {}


def builtin_templates() -> Mapping[str, Template]:
    if not _BUILTINS:
        s = Section("<built-in>", "notify.templates", {})
        _BUILTINS.update({n: compile_template(s, n, n, dict(t)) for n, t in BUILTIN_TEMPLATES.items()})
    return _BUILTINS


def parse_messages(s: Section, base: Path) -> MessagesConfig:
    """The wording keys of `[notify]`; `s` is the whole table (read only the keys named here)."""
    profile = s.get("severity_profile", str, None)
    if profile is not None and profile not in SEVERITY_PROFILES:
        raise s.err("severity_profile", f"must be one of {', '.join(SEVERITY_PROFILES)}")
    labels = {lang: dict(SEVERITY_PROFILES[profile][lang] if profile else _DEFAULT_LABELS[lang]) for lang in LANGUAGES}
    own = Section(s.file, f"{s.name}.severity_labels", s.get("severity_labels", dict, {}))
    for lang in own.data:
        if lang not in LANGUAGES:
            raise own.err(lang, f"unknown language: expected {', '.join(LANGUAGES)}")
        t = Section(s.file, f"{own.name}.{lang}", own.get(lang, dict, {}))
        for tier in TIERS:
            label = t.get(tier, str, None)
            if label is not None and not label.strip():
                raise t.err(tier, "must not be empty")
            if label is not None:
                labels[lang][tier] = label.strip()
        t.done()
    own.done()
    ts = Section(s.file, f"{s.name}.templates", s.get("templates", dict, {}))
    templates = dict(builtin_templates())
    for name in list(ts.data):
        ts.used.add(name)
        templates[name] = compile_template(ts, name, name, ts.data[name])
    template = s.get("template", str, "ack")
    if template and template not in templates:
        raise s.err("template", f'no template "{template}" in [{ts.name}] (known: {", ".join(templates)})')
    # A route names a template of this table: checked here, where the table is known (routes are read first).
    for i, route in enumerate(s.data.get("route", [])):
        name = route.get("template") if isinstance(route, dict) else None
        if isinstance(name, str) and name and name not in templates:
            raise Section(s.file, f"{s.name}.route[{i}]", route).err(
                "template", f'no template "{name}" in [{ts.name}] (known: {", ".join(templates)})'
            )
    return MessagesConfig(
        severity_labels=labels,
        templates=templates,
        template=template,
        console_url=s.get("console_url", str, ""),
        duty_phone=s.get("duty_phone", str, ""),
    )


def parse_route_messages(s: Section, base: Path) -> RouteMessages:
    """The wording keys of one route; `s` is the route's table (read only the keys named here). The name in
    `template` is checked against [notify.templates] by parse_messages."""
    template = s.get("template", str, None)
    text = s.get("what_to_do", (str, dict), None)
    if template is not None and text is not None:
        raise s.err("what_to_do", "set either template (a name) or what_to_do (the route's own text), not both")
    return RouteMessages(
        template=template,
        own=compile_template(s, "what_to_do", "what_to_do", text) if text is not None else None,
        console_url=s.get("console_url", str, None),
        duty_phone=s.get("duty_phone", str, None),
    )
