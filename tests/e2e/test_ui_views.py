"""The UI's views of images, referrers, audit logs and descriptions, in chromium, against content
pushed with real clients (skopeo, oras): what a Quay user looks at rather than reads."""

from __future__ import annotations

import re
import secrets
import subprocess
from pathlib import Path

from playwright.sync_api import Page, expect

from tests.e2e.test_ui import sign_in
from tests.support.accounts import ALL_SCOPES, bearer_client, create_user, issue_token
from tests.support.registry import (
    make_image,
    make_index,
    pull_push,
    push_image,
    sha256,
    token_for,
    v2_client,
    write_oci_layout,
)
from tests.support.server import LiveServer

SIGNATURE_TYPE = "application/vnd.example.signature"


def skopeo_copy(server: LiveServer, layout: Path, tag: str, repo: str, creds: str) -> None:
    subprocess.run(
        [
            "skopeo", "copy", "--all", "--dest-tls-verify=false", "--dest-creds", creds,
            f"oci:{layout}:{tag}", f"docker://{server.host}/{repo}:{tag}",
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )  # fmt: skip


def oras_push_referrer(server: LiveServer, user, repo: str, subject_digest: str, size: int, tmp: Path, monkeypatch) -> None:  # fmt: skip
    import oras.oci
    import oras.provider

    client = oras.provider.Registry(hostname=server.host, insecure=True)
    client.login(user.username, user.password, hostname=server.host, config_path=str(tmp / "auth.json"))  # fmt: skip
    monkeypatch.chdir(tmp)
    Path("signature.sig").write_text("a signature")
    # The config's media type is the artifact type a referrers listing reports.
    Path("config.json").write_text("{}")
    # oras-py renews its one token only after a 403: let its first challenge be the push one.
    assert client.do_request(f"http://{server.host}/v2/{repo}/blobs/uploads/", "POST").status_code == 202  # fmt: skip
    subject = oras.oci.Subject(mediaType="application/vnd.oci.image.manifest.v1+json", digest=subject_digest, size=size)  # fmt: skip
    response = client.push(
        target=f"{server.host}/{repo}:sig",
        files=["signature.sig:application/octet-stream"],
        manifest_config=f"config.json:{SIGNATURE_TYPE}",
        subject=subject,
        manifest_annotations={"purpose": "release signature"},
    )
    assert response.status_code == 201


def test_index_platforms_layers_labels_and_referrers(page: Page, server: LiveServer, tmp_path, monkeypatch) -> None:  # fmt: skip
    owner = create_user(server)
    repo = f"{owner.username}/multi"
    amd = make_image(
        arch="amd64",
        labels={"org.example.team": "platform"},
        history=[{"created": "2025-01-02T03:04:05Z", "created_by": "RUN make install-amd64"}],
    )
    arm = make_image(
        arch="arm64",
        history=[{"created": "2025-01-02T03:04:06Z", "created_by": "RUN make install-arm64"}],
        annotations={"org.opencontainers.image.source": "https://example.com/src"},
    )
    index = make_index([amd, arm])
    layout = write_oci_layout(tmp_path / "layout", {"amd": amd, "arm": arm}, index)
    skopeo_copy(server, layout, "latest", repo, f"{owner.username}:{owner.password}")
    oras_push_referrer(server, owner, repo, arm.digest, len(arm.manifest), tmp_path, monkeypatch)

    sign_in(page, server, owner.username, owner.password)
    page.goto(f"{server.url}/#/repository/{repo}?tab=tags")
    page.get_by_role("row").filter(has_text="latest").get_by_role(
        "link", name="latest", exact=True
    ).click()
    expect(page).to_have_url(re.compile(re.escape(f"digest={sha256(index)}")))
    platforms = page.get_by_role("table").first
    expect(platforms.get_by_role("row").filter(has_text="arm64")).to_contain_text("linux")
    expect(platforms.get_by_role("row").filter(has_text="amd64")).to_have_count(1)
    expect(page.get_by_text("Manifest document")).to_be_visible()
    expect(page.locator("pre.log")).to_be_hidden()

    platforms.get_by_role("row").filter(has_text="arm64").get_by_role("link").click()
    expect(page).to_have_url(re.compile(re.escape(f"digest={arm.digest}")))
    expect(page.get_by_role("cell", name="RUN make install-arm64")).to_be_visible()
    annotations = page.locator("section.annotations").get_by_role("row")
    expect(annotations.filter(has_text="org.opencontainers.image.source")).to_contain_text(
        "https://example.com/src"
    )
    expect(page.get_by_label("Pull by digest")).to_have_value(
        f"podman pull {server.host}/{repo}@{arm.digest}"
    )
    referrers = page.locator(f'section.referrers[data-artifact-type="{SIGNATURE_TYPE}"]')
    expect(referrers.get_by_role("heading", name=SIGNATURE_TYPE)).to_be_visible()
    expect(referrers).to_contain_text("purpose: release signature")
    referrers.get_by_role("link").click()
    expect(page.get_by_text("No signatures, SBOMs or other artifacts")).to_be_visible()
    expect(page.locator("section.annotations")).to_contain_text("release signature")

    page.goto(f"{server.url}/#/repository/{repo}?tab=manifest&digest={amd.digest}")
    expect(page.get_by_role("cell", name="RUN make install-amd64")).to_be_visible()
    labels = page.locator("section.labels").get_by_role("row").filter(has_text="org.example.team")
    expect(labels).to_contain_text("platform")


def test_audit_log_chart_filters_and_no_json(page: Page, server: LiveServer) -> None:
    owner = create_user(server)
    repo = f"{owner.username}/audited"
    with bearer_client(server, issue_token(server, owner.username, ALL_SCOPES)) as api:
        created = api.post(
            "/api/v1/repository",
            json={"namespace": owner.username, "repository": "audited", "visibility": "private",
                  "description": "", "repo_kind": "image"},
        )  # fmt: skip
        assert created.status_code == 201, created.text
        for text in ("one", "two", "three"):
            assert api.put(f"/api/v1/repository/{repo}", json={"description": text}).status_code == 200  # fmt: skip
        visibility = {"visibility": "public"}
        assert api.post(f"/api/v1/repository/{repo}/changevisibility", json=visibility).status_code == 200  # fmt: skip
        total = len(api.get(f"/api/v1/repository/{repo}/logs").json()["logs"])
    assert total >= 5

    sign_in(page, server, owner.username, owner.password)
    page.goto(f"{server.url}/#/repository/{repo}?tab=logs")
    chart = page.locator(".chart svg")
    expect(chart).to_have_attribute("data-total", str(total))
    expect(chart.locator("rect.day-bar")).to_have_count(7)
    heights = chart.locator("rect.day-bar").evaluate_all(
        "bars => bars.map(b => b.getBBox().height)"
    )
    assert heights[-1] > 50 and heights[:-1] == [0] * 6, heights
    rows = page.locator("table.logs tbody tr")
    expect(rows).to_have_count(total)
    assert "{" not in page.locator("table.logs").inner_text()
    expect(rows.first.locator("dl.kv")).to_be_visible()

    page.get_by_label("Action", exact=True).select_option("change_repo_visibility")
    page.get_by_role("button", name="Apply").click()
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Change repo visibility")
    expect(rows.first).to_contain_text("visibility")
    expect(chart).to_have_attribute("data-total", "1")

    page.get_by_label("Action", exact=True).select_option("")
    page.get_by_label("Performer", exact=True).fill("nobody-did-this")
    page.get_by_role("button", name="Apply").click()
    expect(page.get_by_text("No entries match.")).to_be_visible()

    page.get_by_label("Performer", exact=True).fill(owner.username)
    page.get_by_label("From", exact=True).fill("2020-01-01")
    page.get_by_label("To", exact=True).fill("2020-01-05")
    page.get_by_role("button", name="Apply").click()
    expect(chart).to_have_attribute("data-total", "0")
    expect(chart.locator("rect.day-bar")).to_have_count(5)

    page.goto(f"{server.url}/#/account?tab=logs")
    account_chart = page.locator(".chart svg")
    expect(account_chart).to_have_attribute("data-total", re.compile(r"[1-9]\d*"))
    assert int(account_chart.get_attribute("data-total") or 0) >= total


def test_description_is_markdown_and_never_runs_script(page: Page, server: LiveServer) -> None:
    owner = create_user(server)
    repo = f"{owner.username}/described"
    description = (
        "# Welcome\n\nSome **bold** words and a [link](https://example.com/docs).\n\n"
        "- first\n- second\n\n"
        "<script>window.__pwned = true</script>\n\n"
        '<img src="x" onerror="window.__pwned = true">\n\n'
        "[bad](javascript:window.__pwned=true)"
    )
    with bearer_client(server, issue_token(server, owner.username, ALL_SCOPES)) as api:
        created = api.post(
            "/api/v1/repository",
            json={"namespace": owner.username, "repository": "described", "visibility": "public",
                  "description": description, "repo_kind": "image"},
        )  # fmt: skip
        assert created.status_code == 201, created.text

    sign_in(page, server, owner.username, owner.password)
    page.goto(f"{server.url}/#/repository/{repo}")
    card = page.locator(".card.description")
    expect(card.get_by_role("heading", name="Welcome")).to_be_visible()
    expect(card.locator("strong")).to_have_text("bold")
    expect(card.get_by_role("link", name="link")).to_have_attribute("href", "https://example.com/docs")  # fmt: skip
    expect(card.locator("li")).to_have_count(2)
    expect(card).to_contain_text("<script>window.__pwned = true</script>")
    expect(card).to_contain_text("[bad](javascript:window.__pwned=true)")
    assert card.locator("script, img").count() == 0
    assert page.evaluate("window.__pwned") is None

    page.get_by_role("link", name="Edit description").click()
    editor = page.get_by_label("Description")
    editor.fill("## Changed\n\n`code` and <b>not bold</b>")
    preview = page.locator(".preview")
    expect(preview.get_by_role("heading", name="Changed")).to_be_visible()
    expect(preview).to_contain_text("<b>not bold</b>")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("status")).to_contain_text("Description saved.")
    page.goto(f"{server.url}/#/repository/{repo}?tab=tags")
    expect(page.locator(".card.description code")).to_have_text("code")


def test_bulk_tag_delete_and_expiration(page: Page, server: LiveServer) -> None:
    owner = create_user(server)
    repo = f"{owner.username}/bulk"
    token = token_for(server, (owner.username, owner.password), pull_push(repo))
    with v2_client(server, token) as registry:
        for name in ("keep", "drop-a", "drop-b", "later"):
            assert push_image(registry, repo, make_image(), name).status_code == 201

    sign_in(page, server, owner.username, owner.password)
    page.on("dialog", lambda dialog: dialog.accept())
    page.goto(f"{server.url}/#/repository/{repo}?tab=tags")
    expect(page.get_by_role("button", name="Delete selected")).to_be_disabled()
    page.get_by_label("Select tag drop-a").check()
    page.get_by_label("Select tag drop-b").check()
    expect(page.get_by_text("2 tags selected.")).to_be_visible()
    page.get_by_role("button", name="Delete selected").click()
    expect(page.get_by_role("status")).to_contain_text("Deleted 2 tags: drop-a, drop-b.")
    expect(page.get_by_label("Select tag drop-a")).to_have_count(0)
    expect(page.get_by_label("Select tag keep")).to_have_count(1)

    page.get_by_label("Select tag later").check()
    page.get_by_label("Expiration of the selected tags").fill("2099-06-01T12:00")
    page.get_by_role("button", name="Set expiration").click()
    expect(page.get_by_role("status")).to_contain_text("1 tags expire")
    tags = _tags(server, owner, repo)
    assert set(tags) == {"keep", "later"}
    assert tags["later"] is not None and tags["keep"] is None


def _tags(server: LiveServer, owner, repo: str) -> dict[str, int | None]:
    with bearer_client(server, issue_token(server, owner.username, ALL_SCOPES)) as api:
        body = api.get(f"/api/v1/repository/{repo}/tag/", params={"onlyActiveTags": "true"}).json()
    return {tag["name"]: tag.get("end_ts") for tag in body["tags"]}


def test_sign_in_returns_to_the_page_that_asked(page: Page, server: LiveServer) -> None:
    owner = create_user(server)
    page.goto(f"{server.url}/#/account?tab=logs")
    expect(page.get_by_role("heading", name="Sign in required")).to_be_visible()
    page.get_by_role("main").get_by_role("link", name="Sign in").click()
    page.get_by_label("Username or email").fill(owner.username)
    page.get_by_label("Password").fill(owner.password)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name=f"Account {owner.username}")).to_be_visible()
    expect(page).to_have_url(f"{server.url}/#/account?tab=logs")
    page.get_by_role("link", name="Repositories").click()
    expect(page).to_have_url(f"{server.url}/#/")


def test_repository_list_shows_size_and_sorts_and_filters(page: Page, server: LiveServer) -> None:
    owner = create_user(server)
    small = make_image({"small.txt": b"x"})
    large = make_image({"large.bin": secrets.token_bytes(200_000)})
    for name, image in (("alpha-large", large), ("beta-small", small)):
        repo = f"{owner.username}/{name}"
        token = token_for(server, (owner.username, owner.password), pull_push(repo))
        with v2_client(server, token) as registry:
            assert push_image(registry, repo, image, "latest").status_code == 201

    sign_in(page, server, owner.username, owner.password)
    page.goto(f"{server.url}/#/?view=mine")
    rows = page.locator("main tbody tr")
    expect(rows).to_have_count(2)
    page.get_by_label("Sort by").select_option("size")
    expect(rows.first).to_contain_text("alpha-large")
    expect(rows.first).to_contain_text("KiB")
    expect(rows.nth(1).locator("td").nth(3)).to_have_text(re.compile(r"^\d+ B$"))
    page.get_by_label("Sort by").select_option("name")
    expect(rows.first).to_contain_text("alpha-large")
    page.get_by_label("Filter this page").fill("beta")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("beta-small")
    expect(rows.first.locator("td").nth(4)).not_to_have_text("never")
