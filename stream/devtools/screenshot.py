"""docs/screenshot.png: the dashboard of a running ``make run``, in headless Chromium.

    make run                                   # note the worker's address and the token
    .venv/bin/python -m stream.devtools.screenshot http://127.0.0.1:6066/ ust_...

Opens the dashboard with the token, waits until the chart has drawn the demo's history, hovers a
day of the chart (so its exact values show) and saves the top of the page at 1280 x 1000.
Needs Chromium (``make system-tools``) and Playwright (the dev extra).
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

VIEWPORT = {"width": 1280, "height": 1000}
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-sync"]
# the chart has points and the cards a figure: the demo's history has been counted
READY = """() => typeof chartState === "object" && chartState.plots.length === 2
  && chartState.ts.points.some(p => p.metrics.banner_views > 0)"""


def take(url: str, token: str, out: Path, shop: str | None = None) -> None:
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=ARGS, headless=True)
        page = browser.new_page(viewport=VIEWPORT, locale="en-US")  # type: ignore[arg-type]
        page.goto(url)
        page.get_by_test_id("token-input").fill(token)
        page.get_by_test_id("token-submit").click()
        page.get_by_test_id("shop").wait_for()
        if shop:
            page.get_by_test_id("shop").select_option(shop)
        page.wait_for_function(READY, timeout=60_000)
        page.get_by_test_id("chart-traffic").scroll_into_view_if_needed()
        box = page.get_by_test_id("chart-traffic").locator(".u-over").bounding_box()
        assert box is not None, "the chart has no plot area"
        page.mouse.move(box["x"] + box["width"] * 0.7, box["y"] + box["height"] / 2)
        page.get_by_test_id("values-period").wait_for()
        page.evaluate("window.scrollTo(0, 0)")
        out.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(out))
        browser.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url", help="the worker's address that make run prints")
    parser.add_argument("token", help="the dashboard token that make run prints")
    parser.add_argument("out", nargs="?", default="docs/screenshot.png", type=Path)
    parser.add_argument("--shop", help="a shop other than the first")
    args = parser.parse_args()
    take(args.url, args.token, args.out, args.shop)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
