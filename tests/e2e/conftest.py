"""Browser fixtures: Debian's chromium driven by Playwright, a screenshot kept for each failure."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.server import REPO_ROOT, test_backend

CHROMIUM = os.environ.get("CARGOHOLD_TEST_CHROMIUM", "/usr/bin/chromium")
# One folder per backend: the two backends' suites run side by side, and the page walk clears
# its own folder first.
SCREENSHOTS = REPO_ROOT / "test-artifacts" / "screenshots" / test_backend()
# axe-core comes from the npm registry (scripts/test.sh installs it; a missing copy is installed
# here) into a cache folder outside the package: the UI itself keeps no front-end dependency.
AXE_VERSION = "4.14.1"
AXE_DIR = Path(os.environ.get("CARGOHOLD_TEST_AXE_DIR", REPO_ROOT / ".cache" / "axe-core"))
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.when == "call":
        item.stash.setdefault(_FAILED, False)
        if report.failed:
            item.stash[_FAILED] = True


_FAILED = pytest.StashKey[bool]()


@pytest.fixture(scope="session")
def browser():
    if not Path(CHROMIUM).exists() and not shutil.which("chromium"):
        pytest.fail("chromium is not installed (scripts/test.sh installs it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield instance
        instance.close()


@pytest.fixture
def page(browser, request) -> Iterator:
    context = browser.new_context(viewport={"width": 1366, "height": 900})
    context.set_default_timeout(20_000)
    tab = context.new_page()
    yield tab
    if request.node.stash.get(_FAILED, False):
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        tab.screenshot(path=str(SCREENSHOTS / f"{request.node.name}.png"), full_page=True)
    context.close()


@pytest.fixture(scope="session")
def axe_source() -> str:
    script = AXE_DIR / "node_modules" / "axe-core" / "axe.min.js"
    if not script.exists():
        if not shutil.which("npm"):
            pytest.fail("npm is not installed (scripts/test.sh installs it)")
        subprocess.run(
            [
                "npm",
                "install",
                "--no-save",
                "--no-audit",
                "--no-fund",
                "--prefix",
                str(AXE_DIR),
                f"axe-core@{AXE_VERSION}",
            ],
            check=True,
            capture_output=True,
            timeout=300,
        )
    return script.read_text()
