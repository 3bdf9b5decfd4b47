"""Manifests API and manifest labels."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from cargohold.db.models.audit import LogEntry
from tests.support.accounts import DEFAULT_PASSWORD
from tests.support.content import (
    add_index,
    add_manifest,
    make_repository,
    store_config,
    tag_manifest,
)
from tests.support.registry import (
    OCI_INDEX,
    make_image,
    make_index,
    pull_push,
    push_image,
    sha256,
    token_for,
    v2_client,
)
from tests.support.repos import Cast, share


@pytest.fixture(scope="module")
def image(cast: Cast) -> dict:
    path = make_repository(cast.server, cast.owner.username)
    share(cast, path)
    config = store_config(
        cast.server,
        [
            {
                "created": "2024-03-05T14:22:10.123456789Z",
                "created_by": "/bin/sh -c #(nop) ADD file:abc in /",
            },
            {"created": "2024-03-05T14:22:11Z", "created_by": "ENV A=b", "empty_layer": True},
            {
                "created": "2024-03-05T14:22:12Z",
                "created_by": "RUN make",
                "author": "me",
                "comment": "buildah",
            },
        ],
    )
    digest = add_manifest(cast.server, path, (1234, 5678), config=config)
    tag_manifest(cast.server, path, "latest", digest)
    dead = add_manifest(cast.server, path)
    index = add_index(cast.server, path, [digest], [])
    tag_manifest(cast.server, path, "multi", index)
    return {"path": path, "digest": digest, "dead": dead, "index": index, "config": config}


def manifest_url(path: str, digest: str) -> str:
    return f"/api/v1/repository/{path}/manifest/{digest}"


def test_get_manifest_fields(cast: Cast, image: dict) -> None:
    response = cast.clients["reader"].get(manifest_url(image["path"], image["digest"]))
    assert response.status_code == 200
    body = response.json()
    assert body["digest"] == image["digest"]
    assert body["is_manifest_list"] is False
    assert json.loads(body["manifest_data"])["config"] == image["config"]
    assert body["config_media_type"] == "application/vnd.oci.image.config.v1+json"
    assert body["layers_compressed_size"] == 1234 + 5678
    first, second = body["layers"]
    assert first == {
        "index": 0,
        "compressed_size": 1234,
        "is_remote": False,
        "urls": None,
        "command": ["/bin/sh -c #(nop) ADD file:abc in /"],
        "comment": None,
        "author": None,
        "blob_digest": json.loads(body["manifest_data"])["layers"][0]["digest"],
        "created_datetime": "Tue, 05 Mar 2024 14:22:10 -0000",
    }
    assert second["index"] == 1 and second["command"] == ["RUN make"]
    assert second["author"] == "me" and second["comment"] == "buildah"
    listing = cast.clients["reader"].get(manifest_url(image["path"], image["index"])).json()
    assert listing["is_manifest_list"] is True
    assert listing["layers"] is None and listing["layers_compressed_size"] == 0


def test_manifest_errors_and_visibility(cast: Cast, image: dict) -> None:
    path = image["path"]
    owner = cast.clients["owner"]
    assert owner.get(manifest_url(path, image["dead"])).status_code == 404
    assert owner.get(manifest_url(path, "sha256:" + "0" * 64)).status_code == 404
    # Not digest-shaped: no manifest route matches, and no repository has the whole path.
    bad_form = owner.get(manifest_url(path, "latest"))
    assert bad_form.status_code == 404 and bad_form.json()["error_type"] == "not_found"
    assert cast.clients["stranger"].get(manifest_url(path, image["digest"])).status_code == 403
    assert cast.clients["anonymous"].get(manifest_url(path, image["digest"])).status_code == 401
    unknown = manifest_url(path, "sha256:" + "1" * 64) + "/labels"
    assert cast.clients["owner"].get(unknown).status_code == 404
    assert cast.clients["stranger"].get(unknown).status_code == 403
    assert cast.clients["anonymous"].get(unknown).status_code == 401


def test_labels_round_trip(cast: Cast, image: dict) -> None:
    url = manifest_url(image["path"], image["digest"]) + "/labels"
    writer = cast.clients["writer"]
    assert cast.clients["reader"].get(url).json() == {"labels": []}
    added = []
    for key, value, media_type in (
        ("hello", "world", "text/plain"),
        ("hello", "again", None),
        ("my.cool.prefix.for.my.label", '{"a": 1}', None),
    ):
        response = writer.post(url, json={"key": key, "value": value, "media_type": media_type})
        assert response.status_code == 201, response.text
        label = response.json()["label"]
        assert response.headers["location"].endswith(f"/labels/{label['id']}")
        assert label["key"] == key and label["value"] == value and label["source_type"] == "api"
        added.append(label)
    assert added[1]["media_type"] == "text/plain"
    assert added[2]["media_type"] == "application/json"
    assert len(cast.clients["reader"].get(url).json()["labels"]) == 3
    assert len(cast.clients["reader"].get(url + "?filter=hello").json()["labels"]) == 2
    assert cast.clients["reader"].get(f"{url}/{added[0]['id']}").json() == added[0]
    assert (
        cast.clients["reader"]
        .post(url, json={"key": "a", "value": "b", "media_type": None})
        .status_code
        == 403
    )
    assert writer.delete(f"{url}/{added[0]['id']}").status_code == 204
    assert writer.get(f"{url}/{added[0]['id']}").status_code == 404
    assert writer.delete(f"{url}/{added[0]['id']}").status_code == 404
    with cast.server.db() as session:
        kinds = [
            row.kind
            for row in session.scalars(
                select(LogEntry).where(LogEntry.kind.like("manifest_label_%"))
            )
        ]
        entry = json.loads(
            session.scalars(
                select(LogEntry)
                .where(LogEntry.kind == "manifest_label_delete")
                .order_by(LogEntry.id)
            )
            .all()[-1]
            .metadata_json
        )
    assert kinds.count("manifest_label_add") >= 3 and "manifest_label_delete" in kinds
    assert entry["key"] == "hello" and entry["manifest_digest"] == image["digest"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            {"key": "io.docker.whatever", "value": "v", "media_type": None},
            "Label has a reserved prefix",
        ),
        (
            {"key": "quay.expires-after", "value": "1d", "media_type": None},
            "Label has a reserved prefix",
        ),
        ({"key": "bad_label", "value": "v", "media_type": None}, "Label is of an invalid format"),
        (
            {"key": "invalid___key", "value": "v", "media_type": None},
            "Label is of an invalid format",
        ),
        ({"key": "", "value": "v", "media_type": None}, "Label is of an invalid format"),
    ],
)
def test_label_refusals(cast: Cast, image: dict, body: dict, message: str) -> None:
    url = manifest_url(image["path"], image["digest"]) + "/labels"
    response = cast.clients["writer"].post(url, json=body)
    assert response.status_code == 400
    assert response.json()["message"].startswith(message)


def test_label_schema_errors(cast: Cast, image: dict) -> None:
    url = manifest_url(image["path"], image["digest"]) + "/labels"
    writer = cast.clients["writer"]
    for body in (
        {"key": "ok", "value": "v", "media_type": "bad_media_type"},
        {"key": "ok", "value": "v", "media_type": "some/invalid"},
        {"key": "ok", "value": "v"},
        {"key": "ok", "value": 5, "media_type": None},
    ):
        response = writer.post(url, json=body)
        assert response.status_code == 400
        assert response.json()["error_type"] == "invalid_request"
    labels = cast.clients["owner"].get(url).json()["labels"]
    assert all(label["key"] != "ok" for label in labels)


@pytest.mark.parametrize("docker", [False, True], ids=["oci", "docker"])
def test_pushed_image_config_labels_become_manifest_labels(cast: Cast, docker: bool) -> None:
    path = make_repository(cast.server, cast.owner.username)
    share(cast, path)
    config_labels = {
        "maintainer": "team@example.com",
        "io.k8s.display-name": "shown despite the reserved prefix",
        "build-info": '{"commit": "abc123"}',
        "overridden": "from config",
        "": "ignored: no key",
    }
    annotations = {"overridden": "from annotation"} if not docker else None
    pushed = make_image(docker=docker, labels=config_labels, annotations=annotations)
    token = token_for(
        cast.server, (cast.users["writer"].username, DEFAULT_PASSWORD), pull_push(path)
    )
    with v2_client(cast.server, token) as client:
        assert push_image(client, path, pushed, "latest").status_code == 201
        # Pushing the same manifest again adds nothing.
        assert push_image(client, path, pushed, "again").status_code == 201
    url = manifest_url(path, pushed.digest) + "/labels"
    listed = cast.clients["reader"].get(url)
    assert listed.status_code == 200
    found = {label["key"]: label for label in listed.json()["labels"]}
    assert set(found) == {"maintainer", "io.k8s.display-name", "build-info", "overridden"}
    assert all(label["source_type"] == "manifest" for label in found.values())
    assert found["build-info"]["media_type"] == "application/json"
    assert found["maintainer"]["media_type"] == "text/plain"
    assert found["maintainer"]["value"] == "team@example.com"
    expected = "from config" if docker else "from annotation"
    assert found["overridden"]["value"] == expected
    filtered = cast.clients["reader"].get(url, params={"filter": "io.k8s"}).json()["labels"]
    assert [label["key"] for label in filtered] == ["io.k8s.display-name"]
    one = cast.clients["reader"].get(f"{url}/{found['maintainer']['id']}")
    assert one.json()["source_type"] == "manifest"
    # Labels that came with the content cannot be deleted; API labels beside them can.
    refused = cast.clients["writer"].delete(f"{url}/{found['maintainer']['id']}")
    assert refused.status_code == 400
    assert refused.json()["message"] == "Cannot delete immutable label"
    extra = {"key": "extra", "value": "x", "media_type": None}
    added = cast.clients["writer"].post(url, json=extra).json()["label"]
    assert added["source_type"] == "api"
    assert cast.clients["writer"].delete(f"{url}/{added['id']}").status_code == 204
    assert len(cast.clients["reader"].get(url).json()["labels"]) == 4
    assert cast.clients["stranger"].get(url).status_code == 403


def test_an_index_gets_no_labels_from_its_children(cast: Cast) -> None:
    path = make_repository(cast.server, cast.owner.username)
    child = make_image(labels={"only": "child"})
    index = make_index([child])
    token = token_for(cast.server, (cast.owner.username, DEFAULT_PASSWORD), pull_push(path))
    with v2_client(cast.server, token) as client:
        assert push_image(client, path, child, child.digest).status_code == 201
        stored = client.put(
            f"/v2/{path}/manifests/multi", content=index, headers={"Content-Type": OCI_INDEX}
        )
        assert stored.status_code == 201
    owner = cast.clients["owner"]
    child_labels = owner.get(manifest_url(path, child.digest) + "/labels").json()["labels"]
    assert [(label["key"], label["value"]) for label in child_labels] == [("only", "child")]
    index_url = manifest_url(path, sha256(index)) + "/labels"
    assert owner.get(index_url).json() == {"labels": []}


def test_referrers_listed_by_the_api(cast: Cast) -> None:
    path = make_repository(cast.server, cast.owner.username)
    share(cast, path)
    token = token_for(cast.server, (cast.owner.username, DEFAULT_PASSWORD), pull_push(path))
    subject = make_image()
    empty = b"{}"
    signature = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "artifactType": "application/vnd.example.signature",
            "config": {
                "mediaType": "application/vnd.oci.empty.v1+json",
                "digest": sha256(empty),
                "size": len(empty),
            },
            "layers": [],
            "subject": {
                "mediaType": subject.media_type,
                "digest": subject.digest,
                "size": len(subject.manifest),
            },
            "annotations": {"purpose": "signature"},
        }
    ).encode()
    with v2_client(cast.server, token) as registry:
        assert push_image(registry, path, subject, "latest").status_code == 201
        registry.post(f"/v2/{path}/blobs/uploads/", params={"digest": sha256(empty)}, content=empty)
        stored = registry.put(
            f"/v2/{path}/manifests/{sha256(signature)}",
            content=signature,
            headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"},
        )
        assert stored.status_code == 201, stored.text
    url = manifest_url(path, subject.digest) + "/referrers"
    listing = cast.clients["reader"].get(url)
    assert listing.status_code == 200
    assert listing.json()["manifests"] == [
        {
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": sha256(signature),
            "size": len(signature),
            "artifactType": "application/vnd.example.signature",
            "annotations": {"purpose": "signature"},
        }
    ]
    other = cast.clients["reader"].get(url, params={"artifactType": "application/spdx+json"})
    assert other.json() == {"manifests": []}
    assert cast.clients["stranger"].get(url).status_code == 403
    assert cast.clients["anonymous"].get(url).status_code == 401
    unknown = manifest_url(path, "sha256:" + "2" * 64) + "/referrers"
    assert cast.clients["reader"].get(unknown).status_code == 404
