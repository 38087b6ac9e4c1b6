"""Settings from flags and INGRESSPROXY_* variables (what `uvicorn --factory` reads)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ingressproxy.cli.main import build_parser, settings_from_args
from ingressproxy.server.settings import Settings, SettingsError


def test_from_env_reads_every_variable() -> None:
    s = Settings.from_env(
        {
            "INGRESSPROXY_MANIFESTS": "k8s",
            "INGRESSPROXY_PORT": "8081",
            "INGRESSPROXY_ADMIN_PORT": "off",
            "INGRESSPROXY_INGRESS_CLASS": "a, b",
            "INGRESSPROXY_TRUSTED_PROXIES": "10.0.0.0/8,127.0.0.1",
            "INGRESSPROXY_POLL": "1",
            "INGRESSPROXY_CONNECT_TIMEOUT": "2.5",
        }
    )
    assert s.manifests == Path("k8s")
    assert s.port == 8081
    assert s.admin_port is None
    assert s.ingress_classes == ("a", "b")
    assert [str(n) for n in s.trusted_proxies] == ["10.0.0.0/8", "127.0.0.1/32"]
    assert s.poll is True
    assert s.connect_timeout == 2.5


def test_from_env_defaults() -> None:
    s = Settings.from_env({})
    assert (s.manifests, s.port, s.admin_port, s.poll) == (None, 8080, 9000, False)


@pytest.mark.parametrize(
    ("name", "value"),
    [("INGRESSPROXY_PORT", "http"), ("INGRESSPROXY_TRUSTED_PROXIES", "not-a-cidr")],
)
def test_from_env_errors_name_the_variable(name: str, value: str) -> None:
    with pytest.raises(SettingsError, match=name):
        Settings.from_env({name: value})


def test_poll_from_flag_or_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    parser = build_parser()
    assert settings_from_args(parser.parse_args(["serve", "d", "--poll"])).poll is True
    monkeypatch.delenv("INGRESSPROXY_POLL", raising=False)
    assert settings_from_args(parser.parse_args(["serve", "d"])).poll is False
    monkeypatch.setenv("INGRESSPROXY_POLL", "true")
    assert settings_from_args(parser.parse_args(["serve", "d"])).poll is True


def test_admin_port_flag() -> None:
    parser = build_parser()
    assert settings_from_args(parser.parse_args(["serve", "d"])).admin_port == 9000
    assert (
        settings_from_args(parser.parse_args(["serve", "d", "--admin-port", "0"])).admin_port == 0
    )
    assert (
        settings_from_args(parser.parse_args(["serve", "d", "--admin-port", "off"])).admin_port
        is None
    )
    with pytest.raises(SystemExit):
        parser.parse_args(["serve", "d", "--admin-port", "70000"])
