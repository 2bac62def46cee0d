"""Configuration: zero-install defaults, a full file, and one clear error (file and key) per bad setting."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from monitor.config import ConfigError, load_config
from monitor.thresholds import shipped_path

SECRET = "s3cr3t-Pa55"


def write(tmp_path: Path, text: str, name: str = "riverwatch.toml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def test_defaults_without_a_file() -> None:
    cfg = load_config(None)
    assert cfg.mqtt.embedded
    assert (cfg.mqtt.host, cfg.mqtt.port) == ("127.0.0.1", 1883)
    assert cfg.mqtt.topics == ("river/#",)
    assert cfg.influxdb is None  # the embedded store
    assert cfg.notify.urls == ("console://",)
    assert cfg.notify.language == "en"
    assert cfg.thresholds.default_class == "III"
    assert cfg.thresholds.files == ()
    assert cfg.service.http_listen == "127.0.0.1:9108"


def test_an_empty_file_gives_the_defaults(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, ""))
    assert cfg.mqtt.embedded
    assert cfg.influxdb is None
    assert cfg.notify.urls == ("console://",)
    assert cfg.thresholds.default_class == "III"
    assert cfg.service.data_dir == tmp_path / "riverwatch-data"  # relative to the file, not the cwd


FULL = """\
[mqtt]
url = "mqtts://broker.example:8883"
topics = ["river/#", "lake/+/+"]
client_id = "riverwatch-1"
qos = 2
username = "svc"
password_env = "RW_TEST_MQTT_PASSWORD"

[influxdb]
url = "http://127.0.0.1:8086"
org = "bureau"
bucket = "water"
token_env = "RW_TEST_INFLUX_TOKEN"

[thresholds]
files = ["limits/gb.toml", "limits/stations.toml"]
default_class = "II"

[notify]
urls = ["json://127.0.0.1:9000/alerts"]
language = "zh"
utc_offset = "+08:00"

[service]
data_dir = "./data"
http_listen = "0.0.0.0:9200"
"""


@pytest.fixture
def full(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    limits = tmp_path / "conf" / "limits"
    limits.mkdir(parents=True)
    (limits / "gb.toml").write_bytes(shipped_path().read_bytes())
    (limits / "stations.toml").write_bytes(shipped_path("longjiang-stations.toml").read_bytes())
    monkeypatch.setenv("RW_TEST_MQTT_PASSWORD", SECRET)
    monkeypatch.setenv("RW_TEST_INFLUX_TOKEN", SECRET + "-token")
    return write(tmp_path / "conf", FULL)


def test_a_full_file_parses(full: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # relative paths must not depend on the working directory
    cfg = load_config(Path("conf") / "riverwatch.toml")
    conf = (tmp_path / "conf").resolve()
    assert not cfg.mqtt.embedded
    assert (cfg.mqtt.host, cfg.mqtt.port, cfg.mqtt.tls) == ("broker.example", 8883, True)
    assert cfg.mqtt.topics == ("river/#", "lake/+/+")
    assert (cfg.mqtt.client_id, cfg.mqtt.qos, cfg.mqtt.username) == ("riverwatch-1", 2, "svc")
    assert cfg.mqtt.password == SECRET
    assert cfg.influxdb is not None
    assert (cfg.influxdb.url, cfg.influxdb.org, cfg.influxdb.bucket) == ("http://127.0.0.1:8086", "bureau", "water")
    assert cfg.influxdb.token == SECRET + "-token"
    assert cfg.thresholds.files == (conf / "limits" / "gb.toml", conf / "limits" / "stations.toml")
    assert cfg.thresholds.default_class == "II"
    assert cfg.notify.urls == ("json://127.0.0.1:9000/alerts",)
    assert (cfg.notify.language, cfg.notify.utc_offset) == ("zh", "+08:00")
    assert cfg.service.data_dir == conf / "data"
    assert cfg.service.http_listen == "0.0.0.0:9200"


def test_secrets_never_appear_in_repr(full: Path) -> None:
    cfg = load_config(full)
    assert cfg.mqtt.password == SECRET
    for shown in (repr(cfg), str(cfg), repr(cfg.mqtt), repr(cfg.influxdb)):
        assert SECRET not in shown


def test_password_file_is_read_relative_to_the_config(tmp_path: Path) -> None:
    (tmp_path / "mqtt.pw").write_text(SECRET + "\n")
    cfg = load_config(
        write(
            tmp_path,
            """\
        [mqtt]
        url = "mqtt://127.0.0.1:1883"
        password_file = "mqtt.pw"
        """,
        )
    )
    assert cfg.mqtt.password == SECRET
    assert SECRET not in repr(cfg)


def test_influxdb_v1_with_a_database(tmp_path: Path) -> None:
    cfg = load_config(
        write(
            tmp_path,
            """\
        [influxdb]
        url = "http://127.0.0.1:8086"
        api = "v1"
        database = "water"
        """,
        )
    )
    assert cfg.influxdb is not None
    assert (cfg.influxdb.api, cfg.influxdb.database) == ("v1", "water")


BAD = {
    "qos": ("[mqtt]\nqos = 7\n", "[mqtt].qos"),
    "unknown section": ('[mqqt]\nurl = "mqtt://127.0.0.1:1883"\n', "[mqqt]"),
    "unknown key in mqtt": ('[mqtt]\nurl = "mqtt://127.0.0.1:1883"\ntopic = "river/#"\n', "[mqtt].topic"),
    "password twice": (f'[mqtt]\npassword = "{SECRET}"\npassword_env = "X"\n', "[mqtt].password"),
    "dead letters nowhere": ("[dead_letter]\nmax_bytes = 100000\n", "[dead_letter].file"),
    "dead letters back in": (
        '[mqtt]\ntopics = ["river/#"]\n[dead_letter]\ntopic = "river/rejected"\n',
        "[dead_letter].topic",
    ),
    "password_env unset": ('[mqtt]\npassword_env = "RW_TEST_SURELY_UNSET_VARIABLE"\n', "[mqtt].password_env"),
    "influxdb api v3": ('[influxdb]\nurl = "http://127.0.0.1:8086"\napi = "v3"\nbucket = "w"\n', "[influxdb].api"),
    "v2 without bucket": ('[influxdb]\nurl = "http://127.0.0.1:8086"\norg = "bureau"\n', "[influxdb].bucket"),
    "v1 without database": ('[influxdb]\nurl = "http://127.0.0.1:8086"\napi = "v1"\n', "[influxdb].database"),
    "language fr": ('[notify]\nlanguage = "fr"\n', "[notify].language"),
    "utc_offset 8": ('[notify]\nutc_offset = "8"\n', "[notify].utc_offset"),
    "thresholds file missing": ('[thresholds]\nfiles = ["nowhere/gb.toml"]\n', "[thresholds].files"),
    "http_listen nope": ('[service]\nhttp_listen = "nope"\n', "[service].http_listen"),
    "default_class VI": ('[thresholds]\ndefault_class = "VI"\n', "[thresholds].default_class"),
    "qos as a string": ('[mqtt]\nqos = "1"\n', "[mqtt].qos"),
    "mqtt url with a password": (f'[mqtt]\nurl = "mqtt://svc:{SECRET}@127.0.0.1:1883"\n', "[mqtt].url"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_each_bad_setting_names_the_file_and_the_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, case: str
) -> None:
    monkeypatch.delenv("RW_TEST_SURELY_UNSET_VARIABLE", raising=False)
    text, key = BAD[case]
    path = tmp_path / "bad.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert message.startswith(f"{path}: "), message
    assert f"{key}: " in message, message
    assert "\n" not in message
    assert SECRET not in message


def test_a_missing_config_file_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "absent.toml"
    with pytest.raises(ConfigError, match=r"absent\.toml"):
        load_config(path)


def test_a_toml_syntax_error_is_a_config_error(tmp_path: Path) -> None:
    path = write(tmp_path, "[mqtt\nqos = 1\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value).startswith(f"{path}: ")


def test_valid_edge_values_are_accepted(tmp_path: Path) -> None:
    cfg = load_config(
        write(
            tmp_path,
            """\
        [mqtt]
        qos = 0
        [notify]
        utc_offset = "-05:30"
        [service]
        http_listen = ""
        """,
        )
    )
    assert cfg.mqtt.qos == 0
    assert cfg.notify.utc_offset == "-05:30"
    assert cfg.service.http_listen == ""


def test_an_inline_secret_works_with_a_warning_that_does_not_show_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "inline.toml"
    path.write_text(f'[mqtt]\nusername = "svc"\npassword = "{SECRET}"\n', encoding="utf-8")
    with caplog.at_level("WARNING", logger="riverwatch.config"):
        cfg = load_config(path)
    assert cfg.mqtt.password == SECRET
    assert f"{path}: [mqtt].password: a secret written in the config file" in caplog.text
    assert SECRET not in caplog.text
    assert SECRET not in repr(cfg)
