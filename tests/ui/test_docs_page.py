"""``/__admin/docs`` works offline: every asset it loads is served by the engine, and the browser renders
the admin API's operations from the engine's own spec."""

from __future__ import annotations

import httpx
import pytest

pytestmark = [pytest.mark.xdist_group("ui-browser"), pytest.mark.timeout(120)]


def test_docs_page_renders_every_operation_from_local_assets(page, engine):
    spec = httpx.get(f"{engine.url}/__admin/openapi.json", timeout=10, trust_env=False).json()
    operations = sum(len(methods) for methods in spec["paths"].values())
    page.goto(f"{engine.url}/__admin/docs")
    page.wait_for_function(f"document.querySelectorAll('.opblock').length >= {operations}", timeout=30_000)
    assert page.locator(".opblock").count() == operations
    assert page.locator(".opblock-summary-path", has_text="/__admin/faults/rules").count() >= 1
    assert all(url.startswith(engine.url) for url in page.requested), page.requested
    assert any(url.endswith("/__admin/docs/assets/swagger-ui-bundle.js") for url in page.requested)


def test_docs_assets_are_a_fixed_list(engine):
    with httpx.Client(base_url=engine.url, timeout=10, trust_env=False) as http:
        assert http.get("/__admin/docs/assets/swagger-ui.css").headers["content-type"].startswith("text/css")
        for name in ("swagger-initializer.js", "..%2F__init__.py", "index.html"):
            assert http.get(f"/__admin/docs/assets/{name}").status_code == 404
        assert http.get("/__admin/ui/assets/activity.html").status_code == 404
        assert "/__admin/ui/events" not in http.get("/__admin/openapi.json").json()["paths"]
