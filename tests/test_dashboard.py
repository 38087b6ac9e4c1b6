"""The dashboard in a real browser: Debian's chromium driven by Playwright, against the whole app
serving the blog's imagemanager example; a manifest edit must show up on the open page.

Skipped (with the reason) when chromium or Playwright is missing, except in CI (CI=true), where
that is a failure: .ci/run installs chromium.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from e2e import EXAMPLES, Served, run_proxy

from ingressproxy.testing.echo import create_echo_app

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Upper bound for the page to catch up with a reload (live refresh is event-driven).
WAIT_MS = 15_000


def _missing() -> str | None:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "Playwright for Python is not installed (pip install -e '.[dev]')"
    if not CHROMIUM.exists():
        return f"{CHROMIUM} not found (apt-get install -y chromium)"
    return None


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    reason = _missing()
    if reason is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"the dashboard test needs a browser in CI: {reason}")
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


@contextlib.contextmanager
def _pods(folder: Path) -> Iterator[None]:
    """An echo server on every endpoint address of the example (127.0.1.1 ... 127.0.3.3), all
    on one free port that replaces 8080 in its EndpointSlices: --fake-backends binds 8080
    itself, which other tests may hold at the same time."""
    workloads = folder / "workloads.yaml"
    text = workloads.read_text(encoding="utf-8")
    addresses = re.findall(r'addresses: \["([0-9.]+)"\]', text)
    assert len(addresses) == 9 and text.count("\n    port: 8080\n") == 3, "the example changed"
    sockets: list[socket.socket] = []
    for _attempt in range(5):
        for s in sockets:
            s.close()
        sockets = []
        port = 0  # the first address draws a free port, the others take the same
        try:
            for address in addresses:
                s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                sockets.append(s)
                s.bind((address, port))
                s.listen(64)  # connections wait in the backlog until the server accepts
                port = s.getsockname()[1]
            break
        except OSError:
            continue  # that port is taken on another address: draw another
    else:
        raise RuntimeError("no port free on every endpoint address")
    workloads.write_text(text.replace("\n    port: 8080\n", f"\n    port: {port}\n"), "utf-8")
    config = uvicorn.Config(
        create_echo_app("imagemanager"), log_level="warning", log_config=None, lifespan="off"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": sockets}, daemon=True)
    thread.start()
    try:
        yield
    finally:
        server.should_exit = True
        thread.join(10)
        for s in sockets:
            s.close()


@pytest.fixture()
def served(tmp_path: Path) -> Iterator[Served]:
    folder = tmp_path / "imagemanager"
    shutil.copytree(EXAMPLES / "imagemanager", folder)
    # Echo servers behind the example's endpoints, so traffic gets real answers.
    with _pods(folder), run_proxy(folder, watch=True, admin_port=0, access_log="off") as s:
        yield s


def _open(browser: Any, served: Served) -> tuple[Any, str, list[str]]:
    """A page that records console errors and refuses any request leaving the admin origin
    (it would be a CDN or tracking call); not yet navigated."""
    admin = f"http://127.0.0.1:{served.app.state.admin_port}"
    page = browser.new_page(viewport={"width": 1360, "height": 900})
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.route("**/*", lambda r: r.continue_() if r.request.url.startswith(admin) else r.abort())
    return page, admin, problems


def test_dashboard_shows_and_follows_the_config(
    browser: Any, served: Served, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    page, admin, problems = _open(browser, served)
    # Hold every API answer: until the first data arrives, the page says it is loading
    # (not a page of dashes and zeros).
    held: list[Any] = []
    released = False

    def hold(route: Any) -> None:
        if released:
            route.fallback()
        else:
            held.append(route)

    page.route("**/api/**", hold)
    page.goto(f"{admin}/dashboard/")
    expect(page.get_by_test_id("loading")).to_be_visible()
    expect(page.get_by_test_id("loading")).to_contain_text("Loading the configuration")
    expect(page.locator("#content")).to_be_hidden()
    released = True
    for route in held:
        route.fallback()
    expect(page.get_by_test_id("loading")).to_be_hidden(timeout=WAIT_MS)

    generation = served.app.state.holder.current.generation
    expect(page.get_by_test_id("generation")).to_have_text(str(generation), timeout=WAIT_MS)
    rows = page.locator("#routers tbody tr")
    expect(rows).to_have_count(3)
    for path in ("/labeling", "/search", "/text-extraction"):
        expect(page.locator("#routers td.route .path", has_text=path)).to_have_count(1)
    expect(page.locator("#routers td.route .host", has_text="api.imagemanager.io")).to_have_count(3)
    # Each router's dialect, with why it got it as the cell's title (issue 16): the blog's
    # Ingress has Traefik annotations and no class, so it is Traefik's.
    dialect = page.locator("#routers td.dialect").first
    expect(dialect).to_have_text("traefik")
    expect(dialect).to_have_attribute(
        "title", "no class: inferred from its traefik.ingress.kubernetes.io/* annotations"
    )
    expect(page.locator("#routers .pill.enabled")).to_have_count(3)
    # Three Services with three ready Pods each, as in the blog's Traefik dashboard.
    expect(page.locator(".service")).to_have_count(3)
    expect(page.locator(".endpoint.ready")).to_have_count(9)
    expect(page.locator("#count-endpoints")).to_have_text("9")
    # Nothing wrong: the counters of problems are not coloured, no reload banner.
    expect(page.locator("#count-errors")).to_have_text("0")
    expect(page.locator("#card-errors")).not_to_have_class(re.compile(r"\berr\b"))
    expect(page.locator("#card-warnings")).not_to_have_class(re.compile(r"\bwarn\b"))
    expect(page.get_by_test_id("reload-banner")).to_be_hidden()

    # Routes as the user wrote them (namespace/ingress, host, path) before Traefik's id.
    labeling = page.locator("#routers tr", has_text="/labeling")
    expect(labeling.locator("td.route .ingress")).to_have_text("imagemanager/imagemanager-services")
    expect(labeling.locator("a.svc")).to_have_text("imagemanager/image-labeling:http")
    traefik_id = "imagemanager-imagemanager-services-api-imagemanager-io-labeling"
    expect(labeling.locator(".rid")).to_have_text(traefik_id)
    text = labeling.inner_text()
    assert text.index("imagemanager/imagemanager-services") < text.index(traefik_id), text
    card = page.locator(".service", has_text="image-labeling")
    expect(card.locator("h3")).to_contain_text("imagemanager/image-labeling:http")
    expect(card.locator(".used")).to_contain_text(
        "imagemanager/imagemanager-services api.imagemanager.io/labeling"
    )

    # Live traffic from our own metrics: rate, 5xx share and latency per router (the share
    # of 5xx answers is checked exactly in test_admin, against a backend that answers 500).
    host = "api.imagemanager.io"
    for _ in range(5):
        assert served.get("/labeling", host=host).status_code == 200
    assert served.get("/nope", host=host).status_code == 404
    rate = labeling.locator("td.rate")
    expect(rate).to_have_attribute("data-requests", "5", timeout=WAIT_MS)
    expect(rate).to_have_text(re.compile(r"^\d"), timeout=WAIT_MS)
    expect(labeling.locator("td.errors")).to_have_text("0%", timeout=WAIT_MS)
    expect(labeling.locator("td.errors")).not_to_have_class(re.compile(r"\bbad\b"))
    expect(labeling.locator("td.latency")).to_have_text(re.compile(r"\d ms$"), timeout=WAIT_MS)
    expect(page.locator("#unrouted")).to_contain_text("1 since start", timeout=WAIT_MS)
    # The numbers move while the page is open.
    search = page.locator("#routers tr", has_text="/search")
    expect(search.locator("td.rate")).to_have_attribute("data-requests", "0")
    for _ in range(3):
        assert served.get("/search", host=host).status_code == 200
    expect(search.locator("td.rate")).to_have_attribute("data-requests", "3", timeout=WAIT_MS)
    expect(search.locator("td.rate")).not_to_have_text("0", timeout=WAIT_MS)

    # Explain: a URL and optional headers; the router chosen, the candidates that lost and
    # why, the endpoints.
    page.get_by_label("URL to explain").fill("/search/cats?q=1")
    page.get_by_label("request headers").fill("Host: api.imagemanager.io\nX-Team: images")
    page.get_by_role("button", name="Explain").click()
    result = page.get_by_test_id("explain-result")
    expect(result.locator(".verdict .pill")).to_have_text("200", timeout=WAIT_MS)
    expect(result.locator(".chosen")).to_contain_text(
        "imagemanager/imagemanager-services api.imagemanager.io/search"
    )
    expect(result.locator(".candidates li")).to_have_count(2)
    expect(result.locator(".candidates li.no-match").first).to_contain_text("does not start with")
    expect(result.locator(".endpoint")).to_have_count(3)
    expect(result.locator(".endpoint").first).to_have_text(re.compile(r"^127\.0\.2\.1:\d+$"))
    # What the API would refuse is refused on the page too, with the reason.
    page.get_by_label("request headers").fill("no colon here")
    page.get_by_role("button", name="Explain").click()
    expect(result.locator(".explain-error")).to_contain_text("Name: value")
    page.get_by_label("request headers").fill("")
    page.get_by_label("URL to explain").fill("http://api.imagemanager.io/text-extraction")
    page.get_by_role("button", name="Explain").click()
    expect(result.locator(".verdict .pill")).to_have_text("200", timeout=WAIT_MS)

    # A reload that breaks a file: the banner counts it; the errors counter turns red.
    broken = Path(served.app.state.settings.manifests) / "broken.yaml"
    broken.write_text("apiVersion: v1\nkind: Service\nmetadata: {name: x\n", encoding="utf-8")
    expect(page.get_by_test_id("generation")).to_have_text(str(generation + 1), timeout=WAIT_MS)
    banner = page.get_by_test_id("reload-banner")
    expect(banner).to_be_visible()
    expect(banner).to_contain_text("Reload failed")
    expect(banner).to_contain_text("1 failed reload since start")
    expect(banner).to_contain_text("cannot parse YAML")
    expect(page.locator("#card-errors")).to_have_class(re.compile(r"\berr\b"))
    expect(page.locator("#count-errors")).to_have_text("1")

    # The blog's scale-to-zero, written into the manifests folder while the page is open. The
    # broken file is still there, but this reload brings no new error: it succeeded.
    workloads = Path(served.app.state.settings.manifests) / "workloads.yaml"
    text = workloads.read_text(encoding="utf-8")
    head, sep, tail = text.partition("name: image-text-extraction-abc12")
    assert sep, "the example changed: update this test"
    workloads.write_text(head + sep + tail.replace("ready: true", "ready: false"), encoding="utf-8")

    expect(page.get_by_test_id("generation")).to_have_text(str(generation + 2), timeout=WAIT_MS)
    expect(banner).to_be_hidden()
    expect(page.locator("#failed-reloads")).to_have_text("(1 failed)")
    disabled = page.locator("#routers tr.is-disabled")
    expect(disabled).to_have_count(1)
    expect(disabled.locator("td.route .path")).to_contain_text("/text-extraction")
    # Traefik leaves the router out ("Skipping service"), so its requests get 404.
    expect(disabled).to_contain_text("Skipping service")
    expect(page.locator(".endpoint.ready")).to_have_count(6)
    expect(page.locator(".endpoint.not-ready")).to_have_count(3)
    expect(page.locator("#diagnostics li[data-code=no-endpoints]")).to_have_count(1)
    # The explanation on screen follows the reload: the rule is now left out.
    expect(result.locator(".verdict .pill")).to_have_text("404", timeout=WAIT_MS)
    expect(result.locator(".candidates li.skipped .rid")).to_have_text(
        "imagemanager-imagemanager-services-api-imagemanager-io-text-extraction"
    )
    expect(result.locator(".candidates li.skipped")).to_contain_text(
        "imagemanager/imagemanager-services api.imagemanager.io/text-extraction"
    )

    broken.unlink()
    expect(page.get_by_test_id("generation")).to_have_text(str(generation + 3), timeout=WAIT_MS)
    expect(page.locator("#count-errors")).to_have_text("0")
    expect(page.locator("#card-errors")).not_to_have_class(re.compile(r"\berr\b"))
    expect(page.locator("#card-warnings")).to_have_class(re.compile(r"\bwarn\b"))

    page.get_by_label("search").fill("labeling")
    expect(rows).to_have_count(1)
    expect(page.locator(".service")).to_have_count(1)
    page.get_by_label("search").fill("")
    expect(rows).to_have_count(3)

    shot = tmp_path / "dashboard.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    if os.environ.get("INGRESSPROXY_SCREENSHOT"):  # for people reviewing the page's look
        shutil.copy(shot, os.environ["INGRESSPROXY_SCREENSHOT"])
    assert problems == []


def test_dashboard_says_when_the_api_is_unreachable(browser: Any, served: Served) -> None:
    from playwright.sync_api import expect

    page, admin, problems = _open(browser, served)
    failing = True

    def api(route: Any) -> None:
        if failing:
            route.fulfill(status=503, json={"message": "draining"})
        else:
            route.fallback()

    page.route("**/api/**", api)
    page.goto(f"{admin}/dashboard/")
    loading = page.get_by_test_id("loading")
    expect(loading).to_contain_text("Cannot reach the admin API (draining)", timeout=WAIT_MS)
    expect(loading).to_contain_text("retrying")
    expect(page.locator("#content")).to_be_hidden()
    failing = False  # the page retries on its own
    expect(loading).to_be_hidden(timeout=WAIT_MS)
    expect(page.locator("#routers tbody tr")).to_have_count(3)
    # The browser logs each refused fetch itself; the page adds no error of its own.
    assert [p for p in problems if "503" not in p] == []
