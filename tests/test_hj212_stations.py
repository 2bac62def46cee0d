"""Station keys for HJ 212 data loggers: `mn`, `pw_env` / `pw_file`, checked with path:line."""

from __future__ import annotations

from pathlib import Path

import pytest

from monitor.ingest.hj212_server import loggers
from monitor.thresholds import ThresholdError, load


def problems(tmp_path: Path, *bodies: str) -> str:
    paths = []
    for i, body in enumerate(bodies):
        p = tmp_path / f"stations{i}.toml"
        p.write_text(body, encoding="utf-8")
        paths.append(p)
    with pytest.raises(ThresholdError) as e:
        load(paths)
    return str(e.value)


def test_an_mn_names_one_station_across_files(tmp_path: Path) -> None:
    a = '[stations.a]\nriver = "X"\nmn = "MN0001"\npw_env = "A_PW"\n'
    b = '[stations.b]\nriver = "X"\n\nmn = "MN0001"\npw_env = "B_PW"\n'
    text = problems(tmp_path, a, b)
    assert f"{tmp_path / 'stations1.toml'}:4: stations.b.mn: MN 'MN0001' is already the logger of" in text
    assert f"{tmp_path / 'stations0.toml'}:3" in text


def test_a_password_is_never_inline_and_always_given(tmp_path: Path) -> None:
    text = problems(
        tmp_path,
        '[stations.a]\nmn = "MN1"\npw = "123456"\n\n[stations.b]\nmn = "MN2"\n\n'
        '[stations.c]\nmn = "MN3"\npw_env = "X"\npw_file = "y"\n\n[stations.d]\npw_env = "D_PW"\n'
        '\n[stations.e]\nmn = "has space"\npw_env = "E"\n',
    )
    path = tmp_path / "stations0.toml"
    assert f"{path}:3: stations.a.pw: a password is not written in a station file" in text
    assert f"{path}:6: stations.b: set exactly one of pw_env and pw_file" in text
    assert f"{path}:9: stations.c: set exactly one of pw_env and pw_file" in text
    assert f"{path}:14: stations.d.pw_env is for an HJ 212 logger: set mn too" in text
    assert f"{path}:17: stations.e.mn must be the data logger's MN" in text


def test_passwords_come_from_the_environment_or_a_file_beside_the_station_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "b.pw").write_text("from-file\n", encoding="utf-8")
    path = tmp_path / "stations.toml"
    path.write_text(
        '[stations.a]\nmn = "MNA"\npw_env = "RW_A_PW"\n\n'
        '[stations.b]\nmn = "MNB"\npw_file = "secrets/b.pw"\ntimezone = "+07:00"\n\n'
        '[stations.c]\nmn = "MNC"\npw_env = "RW_UNSET_PW"\n\n[stations.d]\n',
        encoding="utf-8",
    )
    monkeypatch.setenv("RW_A_PW", "from-env")
    monkeypatch.delenv("RW_UNSET_PW", raising=False)
    found = loggers(load([path]).stations)
    assert sorted(found) == ["MNA", "MNB", "MNC"]
    assert (found["MNA"].station, found["MNA"].password) == ("a", "from-env")
    assert (found["MNB"].station, found["MNB"].password) == ("b", "from-file")
    assert found["MNC"].password is None and "pw_env RW_UNSET_PW is not set" in found["MNC"].problem
    # DataTime is station time: China Standard Time unless the station says otherwise.
    assert str(found["MNA"].tz) == "Asia/Shanghai"
    assert found["MNB"].tz.utcoffset(None).total_seconds() == 7 * 3600  # type: ignore[union-attr]
