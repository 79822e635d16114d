"""report.html in real Chromium: every item is there, the filters hide what does not match, a
thumbnail opens the full-size screenshot from the store, and the page requests nothing else."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from proctor.report_html import write_html_report
from proctor_jobs.store.fs import FilesystemStore
from tests.report_runs import DOMAINS, LONG_REASON, NOTES, RENDER_FAILED, UNJUDGEABLE, artifactsbench_run

pytestmark = pytest.mark.slow
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]
VISIBLE = (
    "() => [...document.querySelectorAll('.item')]"
    ".filter(e => e.offsetParent !== null).map(e => e.dataset.id)"
)


@pytest.fixture
def browser():
    if not Path(CHROMIUM).exists():
        if os.environ.get("PROCTOR_REQUIRE_ENV") == "1":
            pytest.fail(f"{CHROMIUM} is missing (tests/setup.d/20-render.sh installs it)")
        pytest.skip(f"{CHROMIUM} is missing")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def test_every_item_filterable_and_thumbnails_open_full_size(tmp_path, browser):
    store = FilesystemStore(tmp_path / "store")
    plan, summary, items, records = artifactsbench_run(store)
    write_html_report(store, plan, summary, items, records)
    report = store.root / plan.layout.report_html
    all_ids = [item["id"] for item in items]

    context = browser.new_context(viewport={"width": 1280, "height": 900})
    requests: list[str] = []
    context.on("request", lambda r: requests.append(r.url))
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.goto(report.as_uri())
    page.wait_for_load_state("load")

    # Every item, each with its score, category and outcome.
    assert page.evaluate(VISIBLE) == all_ids
    assert page.inner_text("#shown") == "42 of 42 items shown"
    card = page.locator("#item-item-07")
    assert "failed" in card.inner_text() and LONG_REASON in card.inner_text()
    assert card.get_attribute("data-category") == "Web Applications"  # DOMAINS[7 % 6]

    # Text filter: an item id, then a note's words (notes are searchable too).
    page.fill("#q", "item-13")
    assert page.evaluate(VISIBLE) == ["item-13"]
    page.fill("#q", "navigation(s) away")
    assert page.evaluate(VISIBLE) == [i for i, n in NOTES.items() if "navigation" in n]
    page.fill("#q", "")

    # Category.
    page.select_option("#cat", "Data Science")
    expected = [item["id"] for item in items if item["class"] == DOMAINS[3]]
    assert page.evaluate(VISIBLE) == expected and len(expected) == 7
    page.select_option("#cat", "")

    # Failed only, then a click on a failure reason in the Failures table.
    page.check("#failed-only")
    failed = sorted(RENDER_FAILED | {UNJUDGEABLE})
    assert page.evaluate(VISIBLE) == failed
    assert page.inner_text("#shown") == f"{len(failed)} of 42 items shown"
    page.uncheck("#failed-only")
    page.click("#failures + table a.pick >> text=unjudgeable")
    assert page.evaluate(VISIBLE) == [UNJUDGEABLE] and page.is_checked("#failed-only")
    page.uncheck("#failed-only")
    page.fill("#q", "")
    assert len(page.evaluate(VISIBLE)) == 42

    # Sort by score, lowest first: the first shown card has the lowest score.
    page.select_option("#sort", "asc")
    scores = page.evaluate(
        "() => [...document.querySelectorAll('.item')].map(e => parseFloat(e.dataset.score))"
        ".filter(s => !isNaN(s))"
    )
    assert scores == sorted(scores) and len(scores) == 41

    # A thumbnail is small on the page and opens the full-size screenshot.
    thumb = page.locator("#item-item-00 a.full").first
    shown_width = thumb.locator("img").evaluate("i => i.getBoundingClientRect().width")
    with context.expect_page() as opened:
        thumb.click()
    full = opened.value
    full.wait_for_load_state("load")
    assert full.url.endswith("/cache/render/item-00/screenshot_0.png")
    size = full.evaluate("() => [document.images[0].naturalWidth, document.images[0].naturalHeight]")
    assert size == [1280, 720] and shown_width < 400

    assert errors == []
    assert all(url.startswith(("file:", "data:")) for url in requests), requests
