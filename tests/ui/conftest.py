"""A real headless browser (Debian's chromium, driven by Playwright through ``executable_path``: Playwright's
own browser download is never used) and an engine of the module's own, so the page shows only this
module's traffic."""

from __future__ import annotations

import shutil
from typing import Iterator

import pytest

from harness.engine import EngineProcess

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu"]


@pytest.fixture(scope="module")
def engine() -> Iterator[EngineProcess]:
    with EngineProcess(extra_args=["--journal-size", "3000"]) as process:
        yield process


@pytest.fixture(scope="module")
def browser():
    executable = CHROMIUM if shutil.which(CHROMIUM) else shutil.which("chromium")
    if executable is None:
        pytest.skip("Debian's chromium is not installed (/usr/bin/chromium): `make test` installs it with apt-get")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is in the test extra: pip install -e '.[test]'")
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS, timeout=30_000)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def page(browser, engine):
    """A fresh tab that records every URL it requests (all must be the engine's: the page works offline)."""
    context = browser.new_context()
    tab = context.new_page()
    tab.set_default_timeout(15_000)
    tab.requested = []
    tab.on("request", lambda request: tab.requested.append(request.url))
    try:
        yield tab
    finally:
        context.close()
