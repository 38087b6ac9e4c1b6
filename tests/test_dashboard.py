"""The dashboard in a real browser: Debian's chromium driven by Playwright, against the whole app
serving the blog's imagemanager example; a manifest edit must show up on the open page.

Skipped (with the reason) when chromium or Playwright is missing, except in CI (CI=true), where
that is a failure: .ci/run installs chromium.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from e2e import EXAMPLES, Served, run_proxy

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


@pytest.fixture()
def served(tmp_path: Path) -> Iterator[Served]:
    folder = tmp_path / "imagemanager"
    shutil.copytree(EXAMPLES / "imagemanager", folder)
    with run_proxy(folder, watch=True, admin_port=0, access_log="off") as s:
        yield s


def test_dashboard_shows_and_follows_the_config(
    browser: Any, served: Served, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    admin = f"http://127.0.0.1:{served.app.state.admin_port}"
    page = browser.new_page(viewport={"width": 1360, "height": 900})
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    # Any request leaving the admin origin would be a CDN or tracking call: refuse it.
    page.route("**/*", lambda r: r.continue_() if r.request.url.startswith(admin) else r.abort())
    page.goto(f"{admin}/dashboard/")

    generation = served.app.state.holder.current.generation
    expect(page.get_by_test_id("generation")).to_have_text(str(generation), timeout=WAIT_MS)
    rows = page.locator("#routers tbody tr")
    expect(rows).to_have_count(3)
    for path in ("/labeling", "/search", "/text-extraction"):
        expect(page.locator("#routers td.path", has_text=path)).to_have_count(1)
    expect(page.locator("#routers td.host", has_text="api.imagemanager.io")).to_have_count(3)
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

    # The blog's scale-to-zero, written into the manifests folder while the page is open.
    workloads = Path(served.app.state.settings.manifests) / "workloads.yaml"
    text = workloads.read_text(encoding="utf-8")
    head, sep, tail = text.partition("name: image-text-extraction-abc12")
    assert sep, "the example changed: update this test"
    workloads.write_text(head + sep + tail.replace("ready: true", "ready: false"), encoding="utf-8")

    expect(page.get_by_test_id("generation")).to_have_text(str(generation + 1), timeout=WAIT_MS)
    disabled = page.locator("#routers tr.is-disabled")
    expect(disabled).to_have_count(1)
    expect(disabled.locator("td.path")).to_contain_text("/text-extraction")
    # Traefik leaves the router out ("Skipping service"), so its requests get 404.
    expect(disabled).to_contain_text("Skipping service")
    expect(page.locator(".endpoint.ready")).to_have_count(6)
    expect(page.locator(".endpoint.not-ready")).to_have_count(3)
    expect(page.locator("#diagnostics li[data-code=no-endpoints]")).to_have_count(1)

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
