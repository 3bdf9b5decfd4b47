"""/metrics: Prometheus text that parses, counters that move with a real skopeo push and
pull, route templates rather than raw paths, and access for chosen networks only."""

from __future__ import annotations

import secrets
import subprocess
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.support.accounts import TestUser
from tests.support.registry import make_image, write_oci_layout
from tests.support.server import LiveServer


def scrape(server: LiveServer) -> dict[str, list]:
    response = httpx.get(server.url + "/metrics", timeout=30)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return {family.name: family.samples for family in text_string_to_metric_families(response.text)}


def value(families: dict[str, list], sample_name: str, **labels: str) -> float:
    family = sample_name.removesuffix("_total").removesuffix("_count").removesuffix("_sum")
    return sum(
        sample.value
        for sample in families.get(family, [])
        if sample.name == sample_name and all(sample.labels.get(k) == v for k, v in labels.items())
    )


def skopeo(*args: str) -> None:
    subprocess.run(["skopeo", "--insecure-policy", *args], check=True, capture_output=True)


def test_metrics_move_with_a_skopeo_push_and_pull(
    server: LiveServer, user: TestUser, tmp_path: Path
) -> None:
    payload = secrets.token_bytes(300_000)
    image = make_image({"payload.bin": payload})
    layout = write_oci_layout(tmp_path / "layout", {"v1": image})
    creds = f"{user.username}:{user.password}"
    target = f"docker://{server.host}/{user.username}/metered:v1"
    before = scrape(server)

    skopeo("copy", "--dest-tls-verify=false", "--dest-creds", creds, f"oci:{layout}:v1", target)
    after_push = scrape(server)
    pushed = value(after_push, "cargohold_registry_bytes_pushed_total") - value(
        before, "cargohold_registry_bytes_pushed_total"
    )
    layer_size = max(len(blob.data) for blob in image.blobs)
    assert pushed >= layer_size + len(image.manifest)
    manifest_puts = value(
        after_push,
        "cargohold_http_requests_total",
        method="PUT",
        route="/v2/{name}/manifests/{reference}",
        status="201",
    ) - value(
        before,
        "cargohold_http_requests_total",
        method="PUT",
        route="/v2/{name}/manifests/{reference}",
        status="201",
    )
    assert manifest_puts == 1
    latency = value(
        after_push,
        "cargohold_http_request_duration_seconds_count",
        method="PUT",
        route="/v2/{name}/manifests/{reference}",
    )
    assert latency >= 1
    # No upload is running between requests; the gauge went up and came back down.
    assert value(after_push, "cargohold_uploads_in_flight") == 0

    skopeo(
        "copy",
        "--src-tls-verify=false",
        "--src-creds",
        creds,
        target,
        f"oci:{tmp_path / 'pulled'}:v1",
    )
    after_pull = scrape(server)
    pulled = value(after_pull, "cargohold_registry_bytes_pulled_total") - value(
        after_push, "cargohold_registry_bytes_pulled_total"
    )
    assert pulled >= layer_size

    routes = {sample.labels["route"] for sample in after_pull["cargohold_http_requests"]}
    assert "/v2/{name}/blobs/uploads/{uuid}" in routes or "/v2/{name}/blobs/uploads/" in routes
    assert not [route for route in routes if user.username in route]
    assert "cargohold_queue_depth" in after_pull
    assert {s.labels["queue"] for s in after_pull["cargohold_queue_depth"]} >= {"repomirror"}


def test_api_requests_are_counted_by_route_template(server: LiveServer, user: TestUser) -> None:
    path = f"/api/v1/repository/{user.username}/nothing-here"
    before = scrape(server)
    assert httpx.get(server.url + path).status_code in (401, 403, 404)
    after = scrape(server)
    grown = {
        (s.labels["route"], s.labels["status"])
        for s in after["cargohold_http_requests"]
        if s.name == "cargohold_http_requests_total"
        and s.value > value(before, "cargohold_http_requests_total", **s.labels)
    }
    assert any(route.startswith("/api/v1/repository/{") for route, _ in grown), grown


def test_metrics_are_refused_outside_the_allowed_networks(server_factory) -> None:
    closed = server_factory({"METRICS_ALLOWED_NETWORKS": ["192.0.2.0/24"]})
    response = httpx.get(closed.url + "/metrics")
    assert response.status_code == 403
    assert "cargohold_http_requests" not in response.text
