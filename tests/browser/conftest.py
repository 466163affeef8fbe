"""Browser fixtures: Muster served by uvicorn on 127.0.0.1, and Debian's chromium via Playwright.

Playwright's own browser download cannot work here, so the tests drive /usr/bin/chromium
(scripts/bootstrap.sh installs Debian's `chromium`). A failed test keeps a screenshot in
test-artifacts/screenshots/. MUSTER_SCREENSHOTS=docs/screenshots makes the journeys also save
the pictures the README links to.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from playwright.sync_api import Browser, Page, sync_playwright
from sqlalchemy import Engine

from muster.app import create_app
from muster.config import Settings
from muster.services import admins
from tests.console_factories import cheap_password_hasher

ROOT = Path(__file__).resolve().parents[2]
FAILURE_SHOTS = ROOT / "test-artifacts" / "screenshots"
CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser")


def _chromium() -> str:
    configured = os.environ.get("MUSTER_CHROMIUM")
    for candidate in (configured, *CHROMIUM_CANDIDATES, shutil.which("chromium")):
        if candidate and Path(candidate).exists():
            return candidate
    if os.geteuid() == 0 and shutil.which("apt-get"):
        # The same install scripts/bootstrap.sh does, for a suite started without it.
        subprocess.run(["apt-get", "update", "-qq"], check=False, capture_output=True)
        subprocess.run(
            ["apt-get", "install", "-y", "-qq", "chromium"],
            check=False,
            capture_output=True,
            env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
        )
        if Path(CHROMIUM_CANDIDATES[0]).exists():
            return CHROMIUM_CANDIDATES[0]
    pytest.fail("no chromium found: run scripts/bootstrap.sh (installs Debian's chromium)")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if report.when == "call":
        item.stash[_FAILED] = report.failed
    return report


_FAILED = pytest.StashKey[bool]()


@pytest.fixture(autouse=True)
def cheap_argon2(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(admins, "_hasher", cheap_password_hasher())


@pytest.fixture(scope="module")  # its event loop must not outlive the browser tests
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=_chromium(), headless=True)
        yield launched
        launched.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def live_url(settings: Settings, engine: Engine) -> Iterator[str]:
    """Muster on the test database, served by uvicorn in a thread on 127.0.0.1."""
    port = _free_port()
    app = create_app(settings, engine=engine)
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture
def page(browser: Browser, live_url: str, request: pytest.FixtureRequest) -> Iterator[Page]:
    context = browser.new_context(base_url=live_url, viewport={"width": 1280, "height": 860})
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_url)
    opened = context.new_page()
    opened.set_default_timeout(15_000)
    yield opened
    if request.node.stash.get(_FAILED, False):
        FAILURE_SHOTS.mkdir(parents=True, exist_ok=True)
        opened.screenshot(path=str(FAILURE_SHOTS / f"{request.node.name}.png"), full_page=True)
    context.close()


def keep_screenshot(page: Page, name: str, *, full_page: bool = False) -> None:
    """Save a picture of the page for the docs when MUSTER_SCREENSHOTS names a folder."""
    folder = os.environ.get("MUSTER_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / f"{name}.png"), full_page=full_page)
