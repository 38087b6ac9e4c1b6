"""Settings from flags and INGRESSPROXY_* variables, resolved in one place (settings.resolve)
for `serve`, `check`, `explain` and `uvicorn --factory`: one variable per option, one rule."""

from __future__ import annotations

import argparse
import dataclasses
import re
from pathlib import Path

import pytest

from ingressproxy.cli.main import build_parser, main, settings_from_args
from ingressproxy.frontends.semantics import Flavor
from ingressproxy.server.settings import Settings, SettingsError, env_name


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


# --------------------------------------------------------------------------- one naming rule


def serve_options() -> dict[str, argparse.Action]:
    """`serve`'s settings by name: DIR as `manifests`, options by their long flag. Not
    --help, nor the hidden --worker-fd (internal to --workers)."""
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    found: dict[str, argparse.Action] = {}
    for action in sub.choices["serve"]._actions:
        if action.dest == "help" or action.help is argparse.SUPPRESS:
            continue
        longs = [s for s in action.option_strings if s.startswith("--")]
        found[longs[0] if longs else action.dest] = action
    return found


def sample_values(tmp_path: Path) -> dict[str, str]:
    """A value other than the default for every `serve` setting, as its variable's text."""
    backends = tmp_path / "backends.yaml"
    backends.write_text("api: http://127.0.0.1:3002\n", encoding="utf-8")
    return {
        "manifests": "k8s",
        "--host": "0.0.0.0",
        "--port": "8081",
        "--admin-host": "::1",
        "--admin-port": "off",
        "--ingress-class": "nginx",
        "--allow-external-name": "1",
        "--allow-cross-namespace": "1",
        "--flavor": "traefik",
        "--default-certificate": "ns/tls",
        "--backend": "web=http://127.0.0.1:3001",
        "--backends": str(backends),
        "--dns-backends": "{service}.{namespace}",
        "--https-host": "0.0.0.0",
        "--https-port": "off",
        "--redirect-to-https": "true",
        "--upstream-tls-verify": "yes",
        "--upstream-ca": str(tmp_path / "ca.pem"),
        "--trusted-proxies": "10.0.0.0/8",
        "--connect-timeout": "2.5",
        "--read-timeout": "30",
        "--max-body-size": "10m",
        "--max-header-bytes": "16384",
        "--max-headers": "50",
        "--max-uri-length": "4096",
        "--header-timeout": "5",
        "--body-timeout": "7.5",
        "--graceful-timeout": "3",
        "--pool-size": "8",
        "--pool-timeout": "1.5",
        "--poll": "on",
        "--debug-headers": "1",
        "--fake-backends": "1",
        "--workers": "3",
        "--log-level": "debug",
        "--access-log": "json",
    }


def comparable(settings: Settings) -> dict[str, object]:
    """The settings' fields; a backend override without where it was given (a flag's
    and its variable's messages name each their own)."""
    fields = {f.name: getattr(settings, f.name) for f in dataclasses.fields(settings)}
    fields["backend_overrides"] = [(o.key, o.endpoints) for o in settings.backend_overrides]
    return fields


def test_every_serve_option_has_a_sample() -> None:
    """A new `serve` option needs a line in sample_values: the test below then checks that
    its variable INGRESSPROXY_<FLAG> works as the option does."""
    assert sorted(serve_options()) == sorted(sample_values(Path("/tmp")))


@pytest.mark.parametrize("name", sorted(serve_options()))
def test_each_serve_option_has_its_variable(name: str, tmp_path: Path) -> None:
    """INGRESSPROXY_ + the long flag upper-cased, dashes as underscores, gives the Settings
    the flag gives, for `serve` and for the uvicorn factory (Settings.from_env) alike."""
    action = serve_options()[name]
    text = sample_values(tmp_path)[name]
    variable = "INGRESSPROXY_" + name.lstrip("-").upper().replace("-", "_")
    assert env_name(name) == variable
    parser = build_parser()
    if name == "manifests":
        by_flag = settings_from_args(parser.parse_args(["serve", text]), {})
        by_variable = settings_from_args(parser.parse_args(["serve"]), {variable: text})
        env = {variable: text}
    else:
        given = [name] if action.nargs == 0 else [f"{name}={text}"]
        by_flag = settings_from_args(parser.parse_args(["serve", "d", *given]), {})
        by_variable = settings_from_args(parser.parse_args(["serve", "d"]), {variable: text})
        env = {variable: text, "INGRESSPROXY_MANIFESTS": "d"}
    default = settings_from_args(parser.parse_args(["serve", "d"]), {})
    assert comparable(by_flag) != comparable(default), f"{name} {text} is its default"
    assert comparable(by_variable) == comparable(by_flag)
    assert comparable(Settings.from_env(env)) == comparable(by_flag)


@pytest.mark.parametrize(
    ("flag", "given", "variable", "field", "expected"),
    [
        ("--port", "8082", "8081", "port", 8082),
        ("--admin-port", "0", "off", "admin_port", 0),
        ("--admin-port", "off", "9001", "admin_port", None),
        ("--max-body-size", "0", "10m", "max_body_size", None),
        ("--https-port", "off", "8443", "https_port", None),
        ("--flavor", "nginx", "traefik", "flavor", Flavor.NGINX),
        ("--ingress-class", "a", "b,c", "ingress_classes", ("a",)),
        ("--log-level", "error", "debug", "log_level", "error"),
    ],
)
def test_a_flag_wins_over_its_variable(
    flag: str, given: str, variable: str, field: str, expected: object
) -> None:
    args = build_parser().parse_args(["serve", "d", f"{flag}={given}"])
    settings = settings_from_args(args, {env_name(flag): variable})
    assert getattr(settings, field) == expected


def test_check_and_explain_read_the_variables_of_their_options_only() -> None:
    parser = build_parser()
    env = {"INGRESSPROXY_INGRESS_CLASS": "a,b", "INGRESSPROXY_PORT": "not a port"}
    for command in (["check", "d"], ["explain", "d", "/"]):
        settings = settings_from_args(parser.parse_args(command), env)
        assert settings.ingress_classes == ("a", "b")
        assert settings.port == 8080  # they have no --port: its variable is not theirs


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("INGRESSPROXY_WORKERS", "0", "INGRESSPROXY_WORKERS: at least 1 worker"),
        ("INGRESSPROXY_POLL", "maybe", "INGRESSPROXY_POLL: 'maybe' is not one of"),
        ("INGRESSPROXY_ADMIN_PORT", "70000", "INGRESSPROXY_ADMIN_PORT: 70000 is not a port"),
        ("INGRESSPROXY_LOG_LEVEL", "loud", "INGRESSPROXY_LOG_LEVEL: 'loud' is not one of"),
        ("INGRESSPROXY_MAX_BODY_SIZE", "big", "INGRESSPROXY_MAX_BODY_SIZE: 'big' is not a size"),
    ],
)
def test_a_bad_variable_is_named(name: str, value: str, message: str) -> None:
    with pytest.raises(SettingsError, match=re.escape(message)):
        settings_from_args(build_parser().parse_args(["serve", "d"]), {name: value})


def test_serve_takes_dir_from_its_variable_or_asks_for_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("INGRESSPROXY_MANIFESTS", raising=False)
    with pytest.raises(SystemExit) as exc:
        main(["serve", "--port", "0"])
    assert exc.value.code == 2
    assert "the following arguments are required: DIR" in capsys.readouterr().err
