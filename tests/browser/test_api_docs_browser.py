"""The API's Swagger UI in real Chromium: served from our own static files, it renders every
operation and breaks nothing in the content security policy."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.factories import UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("transactional_db")]


def test_swagger_ui_renders_without_a_csp_error(page: Page, log_in):
    UserFactory(username="cora", role="curator")
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    log_in("cora", "/api/docs/")

    expect(page.get_by_role("heading", name="CrowdNet API")).to_be_visible()
    expect(page.locator(".opblock").first).to_be_visible()
    page.locator(".opblock-summary").first.click()
    expect(page.locator(".opblock-body").first).to_be_visible()

    assert page.problems() == []
    assert [url for url in requested if not url.startswith(page.url.split("/api/")[0])] == []
