"""The category pages and the grouped curator nav in real Chromium: a curator builds a tree
and imports a list, every curator page is one menu away (by mouse and by keyboard), the nav
stays one row at 1280 px, and nothing breaks the content security policy."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from labeling.models import Category
from tests.factories import UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("transactional_db")]

NAV = {
    "Data": [
        ("Categories", "/curate/categories/"),
        ("Upload", "/curate/upload/"),
        ("Scrape", "/curate/scrape/"),
        ("Imports", "/curate/imports/"),
        ("Exports", "/curate/exports/"),
    ],
    "Crowd": [
        ("Workers", "/curate/workers/"),
        ("Crowd", "/curate/crowd/"),
        ("Progress", "/curate/progress/"),
        ("Review", "/curate/review/"),
    ],
    "Model": [
        ("Training", "/curate/training/"),
        ("Model error", "/curate/training/error/"),
        ("Predict", "/curate/predict/"),
    ],
}


def test_a_curator_creates_a_category_under_a_parent_and_imports_a_csv(
    page: Page, log_in, screenshot
):
    UserFactory(username="cora", role="curator")
    Category.objects.create(name="animal", slug="animal", wnid="n00015388")
    log_in("cora", "/curate/categories/")

    page.get_by_role("link", name="New category").click()
    page.get_by_label("Name").fill("domestic cat")
    page.get_by_label("Slug").fill("cat")
    page.get_by_label("WordNet id").fill("n02121808")
    page.get_by_label("Definition").fill("a small domesticated feline")
    page.get_by_label("Parent").select_option(label="animal")
    page.get_by_label("Target images").fill("600")
    page.get_by_role("button", name="Create category").click()
    expect(page.get_by_text("Category domestic cat created.")).to_be_visible()

    page.get_by_role("link", name="← All categories").click()
    page.get_by_role("link", name="Import a list (CSV or JSON)").click()
    page.get_by_label("CSV or JSON file").set_input_files(
        files=[
            {
                "name": "cats.csv",
                "mimeType": "text/csv",
                "buffer": b"wnid,name,parent_wnid\n"
                b"n02123159,tiger cat,n02123045\n"
                b"n02123045,tabby cat,n02121808\n",
            }
        ]
    )
    page.get_by_role("button", name="Import").click()

    expect(page.get_by_text("cats.csv: 2 categories created, 0 updated.")).to_be_visible()
    expect(page.get_by_role("link", name="tiger cat")).to_be_visible()
    screenshot("categories-tree")
    tree = Category.objects.select_related("parent").order_by("slug")
    assert [(c.slug, c.wnid, c.parent.slug if c.parent else None) for c in tree] == [
        ("animal", "n00015388", None),
        ("cat", "n02121808", "animal"),
        ("tabby-cat", "n02123045", "cat"),
        ("tiger-cat", "n02123159", "tabby-cat"),
    ]
    assert Category.objects.get(slug="cat").target_images == 600
    assert page.problems() == []


def test_every_curator_page_is_one_menu_away_and_the_nav_is_one_row(page: Page, log_in, screenshot):
    UserFactory(username="cora", role="curator", is_staff=True)
    page.set_viewport_size({"width": 1280, "height": 800})
    log_in("cora", "/curate/categories/")

    tops = page.eval_on_selector_all(
        ".nav > *, .nav-links > li",
        "els => els.map(e => Math.round(e.getBoundingClientRect().top))",
    )
    height = page.eval_on_selector(".site-header", "e => e.getBoundingClientRect().height")
    link_height = page.eval_on_selector(".nav-links a", "e => e.getBoundingClientRect().height")
    assert max(tops) - min(tops) < link_height  # one row: nothing wrapped below
    assert height < 2.5 * link_height
    page.locator(".nav-group summary", has_text="Data").click()
    screenshot("curator-nav-data-open")
    page.keyboard.press("Escape")

    for group, links in NAV.items():
        for name, path in links:
            page.locator(".nav-group summary", has_text=group).click()
            page.locator(".nav-menu").get_by_role("link", name=name, exact=True).click()
            page.wait_for_url(f"**{path}")
            summary = page.locator(".nav-group summary", has_text=group)
            expect(summary).to_have_class("nav-current")
    assert page.problems() == []


def test_the_grouped_nav_works_by_keyboard(page: Page, log_in):
    UserFactory(username="cora", role="curator")
    page.set_viewport_size({"width": 1280, "height": 800})
    log_in("cora", "/curate/categories/")

    model = page.locator(".nav-group summary", has_text="Model")
    model.focus()
    page.keyboard.press("Enter")
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    focused = page.evaluate("document.activeElement.textContent")
    page.keyboard.press("Enter")

    page.wait_for_url("**/curate/training/error/")
    assert focused == "Model error"
    page.locator(".nav-group summary", has_text="Crowd").focus()
    page.keyboard.press("Enter")
    expect(page.locator(".nav-menu[aria-label=Crowd]")).to_be_visible()
    page.keyboard.press("Escape")
    expect(page.locator(".nav-menu[aria-label=Crowd]")).to_be_hidden()
    assert page.problems() == []
