"""Answers a Quay client compares byte for byte: the CSRF refusal and the tag `size`."""

from __future__ import annotations

import json
import os

import httpx

from tests.support.accounts import TestUser
from tests.support.registry import (
    OCI_INDEX,
    OCI_MANIFEST,
    Image,
    make_image,
    make_index,
    make_repository,
    pull_push,
    push_image,
    token_for,
    v2_client,
)
from tests.support.server import LiveServer
from tests.support.sessions import csrf_client, session_client

CSRF_REFUSED = {"error": "CSRF token was invalid or missing."}


def _two_layer_image() -> Image:
    first = make_image({"one.bin": os.urandom(3000)})
    second = make_image({"two.bin": os.urandom(5000)})
    layers = [*first.layers, *second.layers]
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": first.config.descriptor(),
            "layers": [layer.descriptor() for layer in layers],
        }
    ).encode()
    return Image(first.config, layers, manifest, OCI_MANIFEST)


def test_csrf_refusals_use_the_error_key(server: LiveServer, user: TestUser) -> None:
    with httpx.Client(base_url=server.url, timeout=30) as anonymous:
        refused = anonymous.post("/api/v1/organization/", json={"name": "nocsrf"})
        assert refused.status_code == 403
        assert refused.json() == CSRF_REFUSED
    with session_client(server, user.username, user.password) as browser:
        browser.headers["X-CSRF-Token"] = "not-the-token"
        wrong = browser.put("/api/v1/user/", json={"invoice_email": True})
        assert wrong.status_code == 403
        assert wrong.json() == CSRF_REFUSED
    with csrf_client(server) as anonymous:
        del anonymous.headers["X-CSRF-Token"]
        missing = anonymous.post("/api/v1/signin", json={"username": "x", "password": "y"})
        assert missing.status_code == 403
        assert missing.json() == CSRF_REFUSED


def test_tag_size_counts_the_layers_only(server: LiveServer, user: TestUser) -> None:
    repo = make_repository(server, user.username, "sized", public=False)
    image = _two_layer_image()
    other = make_image({"arm.bin": os.urandom(100)}, arch="arm64")
    index = make_index([image, other])
    token = token_for(server, (user.username, user.password), pull_push(repo))
    with v2_client(server, token) as client:
        assert push_image(client, repo, image, "image").status_code == 201
        assert push_image(client, repo, other, other.digest).status_code == 201
        pushed_index = client.put(
            f"/v2/{repo}/manifests/multi", content=index, headers={"Content-Type": OCI_INDEX}
        )
        assert pushed_index.status_code == 201

    layers_size = sum(len(layer.data) for layer in image.layers)
    with session_client(server, user.username, user.password) as browser:
        rows = browser.get(f"/api/v1/repository/{repo}/tag/").json()["tags"]
        by_name = {row["name"]: row for row in rows}
        assert by_name["image"]["size"] == layers_size
        assert by_name["multi"]["size"] is None and by_name["multi"]["is_manifest_list"] is True

        tags = browser.get(f"/api/v1/repository/{repo}").json()["tags"]
        assert tags["image"]["size"] == layers_size
        assert tags["multi"]["size"] is None

        shown = browser.get(f"/api/v1/repository/{repo}/manifest/{image.digest}").json()
        assert shown["layers_compressed_size"] == layers_size
