"""The activity page on an engine with an admin token: the page and its files load without it (they hold no
engine state), the calls and the controls need it, and once typed in the page goes live."""

from __future__ import annotations

from typing import Iterator

import httpx
import pytest

from harness.engine import EngineProcess
from .test_activity_page import INJECTION, call, rows

pytestmark = [pytest.mark.xdist_group("ui-browser"), pytest.mark.timeout(180)]

ADMIN_TOKEN = "ui-admin-s3cret"


@pytest.fixture(scope="module")
def engine() -> Iterator[EngineProcess]:
    with EngineProcess(admin_token=ADMIN_TOKEN) as process:
        yield process


def test_the_page_and_its_files_are_public_but_the_data_needs_the_token(engine) -> None:
    with httpx.Client(base_url=engine.url, timeout=10, trust_env=False) as http:
        for path in ("/__admin/ui", "/__admin/ui/assets/activity.js", "/__admin/docs",
                     "/__admin/docs/assets/swagger-ui.css"):
            assert http.get(path).status_code == 200, path
        for path in ("/__admin/ui/events", "/__admin/ui/calls/default/1", "/__admin/journal",
                     "/__admin/ui/assets/x/y", "/__admin/docs/assets/"):
            assert http.get(path).status_code == 401, path
        assert http.post("/__admin/presets/allow-all", json={}).status_code == 401


def test_the_page_goes_live_once_the_admin_token_is_typed_in(page, engine) -> None:
    page.goto(f"{engine.url}/__admin/ui")
    page.wait_for_selector('#status[data-state="down"]')
    assert "admin token" in page.locator("#status").inner_text()
    page.fill("#token", ADMIN_TOKEN)
    page.dispatch_event("#token", "change")
    page.wait_for_selector('#status[data-state="live"]', timeout=20_000)
    call(engine.url, INJECTION, namespace="ui-token", app="app-token")
    rows(page, namespace="ui-token").first.wait_for()
    assert rows(page, namespace="ui-token").locator("td.verdict").inner_text() == "blocked"
