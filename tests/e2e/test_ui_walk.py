"""A walk over every page, signed out and signed in: each page loads with no console error and no
request that answers an error, axe-core finds no serious or critical violation, and the layout
holds at 1400 px and at a 390 px phone width (screenshots of both are kept as test artifacts)."""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field

from playwright.sync_api import Page, Response, expect

from tests.e2e.conftest import SCREENSHOTS
from tests.e2e.test_ui import sign_in
from tests.support.accounts import create_organization, create_user
from tests.support.content import make_repository
from tests.support.registry import make_image, pull_push, push_image, token_for, v2_client

WIDTHS = {"wide": 1400, "phone": 390}
PAGE_SHOTS = SCREENSHOTS / "pages"


@dataclass
class Watch:
    """What went wrong in the browser while a page loaded."""

    problems: list[str] = field(default_factory=list)

    def attach(self, page: Page) -> None:
        page.on("console", lambda msg: msg.type == "error" and self.problems.append(f"console: {msg.text}"))  # fmt: skip
        page.on("pageerror", lambda error: self.problems.append(f"script: {error}"))
        page.on("requestfailed", lambda request: self.problems.append(f"failed: {request.url}"))
        page.on("response", self._response)

    def _response(self, response: Response) -> None:
        if response.status >= 400:
            self.problems.append(f"{response.status}: {response.request.method} {response.url}")

    def take(self) -> list[str]:
        found, self.problems = self.problems, []
        return found


def serious_violations(page: Page, axe_source: str) -> list[str]:
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.add_script_tag(content=axe_source)
    result = page.evaluate("axe.run(document, { resultTypes: ['violations'] })")
    return [
        f"{violation['id']} ({violation['impact']}): "
        + "; ".join(
            node["target"][0] if node["target"] else "?" for node in violation["nodes"][:3]
        )  # fmt: skip
        for violation in result["violations"]
        if violation["impact"] in ("serious", "critical")
    ]


def visit(page: Page, watch: Watch, url: str, heading: str, shot: str, axe_source: str) -> list[str]:  # fmt: skip
    """Load a page afresh and report every problem found on it."""
    page.set_viewport_size({"width": WIDTHS["wide"], "height": 900})
    page.goto("about:blank")
    page.goto(url)
    expect(page.get_by_role("heading", level=1)).to_contain_text(heading)
    expect(page.get_by_text("Loading…")).to_have_count(0)
    page.wait_for_load_state("networkidle")
    problems = [f"{shot}: {problem}" for problem in serious_violations(page, axe_source)]
    for name, width in WIDTHS.items():
        page.set_viewport_size({"width": width, "height": 900})
        overflow = page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        if overflow > 0:
            problems.append(f"{shot}: {overflow}px of horizontal scrolling at {width}px")
        folder = PAGE_SHOTS / name
        folder.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(folder / f"{shot}.png"), full_page=True)
    return problems + [f"{shot}: {problem}" for problem in watch.take()]


def test_walk_every_page_signed_out_and_in(page: Page, server_factory, axe_source: str) -> None:
    server = server_factory({"FEATURE_SUPERUSERS_FULL_ACCESS": True})
    admin = create_user(server, "admin")
    org = create_organization(server, admin)
    repo = make_repository(server, org, "tour", public=True)
    token = token_for(server, (admin.username, admin.password), pull_push(repo))
    image = make_image(labels={"org.example.team": "tour"})
    with v2_client(server, token) as registry:
        assert push_image(registry, repo, image, "latest").status_code == 201
    shutil.rmtree(PAGE_SHOTS, ignore_errors=True)
    watch = Watch()
    watch.attach(page)
    problems: list[str] = []

    def walk(pages: dict[str, str], prefix: str) -> None:
        for number, (hash_path, heading) in enumerate(pages.items()):
            shot = f"{prefix}-{number:02d}-" + "".join(c if c.isalnum() else "_" for c in hash_path)[:60]  # fmt: skip
            problems.extend(visit(page, watch, f"{server.url}/{hash_path}", heading, shot, axe_source))  # fmt: skip

    repo_tabs = ("tags", "history", "builds")
    manifest = f"#/repository/{repo}?tab=manifest&digest={image.digest}"
    signed_out = {
        "#/": "Repositories",
        "#/?view=public": "Repositories",
        "#/signin": "Sign in",
        "#/signup": "Create account",
        "#/account": "Sign in required",
        "#/superuser": "Sign in required",
        "#/new-repository": "Sign in required",
        "#/new-organization": "Sign in required",
        manifest: repo,
        **{f"#/repository/{repo}?tab={tab}": repo for tab in repo_tabs},
    }
    walk(signed_out, "out")

    sign_in(page, server, admin.username, admin.password)
    # Let the page shown after sign-in finish loading: leaving it early would abort its calls.
    expect(page.get_by_text("Loading…")).to_have_count(0)
    page.wait_for_load_state("networkidle")
    assert watch.take() == []
    signed_in = {
        "#/": "Repositories",
        f"#/?view=org:{org}": "Repositories",
        "#/?view=starred": "Repositories",
        "#/?view=public": "Repositories",
        "#/new-repository": "Create repository",
        "#/new-organization": "Create organization",
        manifest: repo,
    }
    admin_tabs = ("permissions", "settings", "notifications", "policies", "mirror", "triggers", "logs")  # fmt: skip
    for tab in repo_tabs + admin_tabs:
        signed_in[f"#/repository/{repo}?tab={tab}"] = repo
    for tab in ("teams", "robots", "applications", "prototypes", "quota", "policies", "logs"):
        signed_in[f"#/organization/{org}?tab={tab}"] = f"Organization {org}"
    for tab in ("profile", "password", "tokens", "robots", "quota", "policies", "logs"):
        signed_in[f"#/account?tab={tab}"] = f"Account {admin.username}"
    for tab in ("users", "organizations", "quotas", "keys", "size", "builds", "logs", "messages"):
        signed_in[f"#/superuser?tab={tab}"] = "Superuser panel"
    walk(signed_in, "in")

    assert problems == [], "\n".join(problems)
    assert len(list((PAGE_SHOTS / "phone").glob("*.png"))) >= len(signed_out) + len(signed_in)
