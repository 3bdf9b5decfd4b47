"""Usage accounting and the enforcement rules, against the server's database."""

from __future__ import annotations

import hashlib

import pytest
from sqlalchemy import select

from cargohold.api.quota_views import namespace_quota_fields, repository_quota_reports
from cargohold.db.models.accounts import User
from cargohold.db.models.quota import NamespaceQuota, QuotaLimit, QuotaLimitType
from cargohold.db.models.registry import Blob, BlobUpload, Manifest, ManifestBlob, Repository
from cargohold.domain import quota as quotas
from tests.support.accounts import TestUser, create_organization
from tests.support.server import LiveServer


def _blob(session, label: str, size: int) -> Blob:
    blob = Blob(digest="sha256:" + hashlib.sha256(label.encode()).hexdigest(), size=size)
    session.add(blob)
    session.flush()
    return blob


def _manifest(session, repo: Repository, label: str, blobs: list[Blob]) -> Manifest:
    manifest = Manifest(
        repository_id=repo.id,
        digest="sha256:" + hashlib.sha256(label.encode()).hexdigest(),
        media_type="application/vnd.oci.image.manifest.v1+json",
        manifest_bytes=b"{}",
    )
    session.add(manifest)
    session.flush()
    for blob in blobs:
        session.add(ManifestBlob(repository_id=repo.id, manifest_id=manifest.id, blob_id=blob.id))
    session.flush()
    return manifest


def _org(session, name: str) -> User:
    return session.scalar(select(User).where(User.username == name))


def test_usage_counts_distinct_blobs_and_follows_manifest_changes(
    server: LiveServer, user: TestUser
) -> None:
    settings = server.settings
    name = create_organization(server, user)
    with server.db() as session:
        org = _org(session, name)
        first = Repository(namespace_user_id=org.id, name="first")
        second = Repository(namespace_user_id=org.id, name="second")
        session.add_all([first, second])
        session.flush()
        config, shared, own = (
            _blob(session, f"{name}-{k}", s)
            for k, s in (("config", 100), ("shared", 1000), ("own", 10))
        )
        _manifest(session, first, f"{name}-m1", [config, shared])
        quotas.record_manifest_change(session, settings, org.id, first.id)
        second_manifest = _manifest(session, second, f"{name}-m2", [shared, own])
        quotas.record_manifest_change(session, settings, org.id, second.id)
        ids = (org.id, first.id, second.id)

    with server.db() as session:
        org_id, first_id, second_id = ids
        assert quotas.namespace_usage(session, org_id) == 1110
        fields = namespace_quota_fields(session, settings, [org_id])[org_id]
        assert fields["quota_report"]["quota_bytes"] == 1110
        assert fields["quota_report"]["backfill_status"] == "complete"
        assert fields["quotas"] == []
        reports = repository_quota_reports(
            session, settings, session.scalars(select(Repository).where(Repository.id.in_(ids[1:])))
        )
        assert reports[first_id]["quota_bytes"] == 1100
        assert reports[second_id]["quota_bytes"] == 1010

        # Removing the second manifest frees only the blob nothing else references.
        session.delete(session.get(Manifest, second_manifest.id))
        session.flush()
        quotas.record_manifest_change(session, settings, org_id, second_id)
    with server.db() as session:
        assert quotas.namespace_usage(session, org_id) == 1100
        # And a recalculation from scratch agrees with the incremental totals.
        assert quotas.recalculate_namespace(session, session.get(User, org_id)) == 1100


def test_reject_limits_refuse_uploads_and_manifests(server: LiveServer, user: TestUser) -> None:
    settings = server.settings
    name = create_organization(server, user)
    with server.db() as session:
        org = _org(session, name)
        repo = Repository(namespace_user_id=org.id, name="app")
        session.add(repo)
        session.flush()
        quota = NamespaceQuota(namespace_id=org.id, limit_bytes=1000)
        session.add(quota)
        session.flush()
        session.add(
            QuotaLimit(quota_id=quota.id, limit_type=QuotaLimitType.REJECT, percent_of_limit=80)
        )
        session.add(
            QuotaLimit(quota_id=quota.id, limit_type=QuotaLimitType.WARNING, percent_of_limit=50)
        )
        layer = _blob(session, f"{name}-layer", 600)
        _manifest(session, repo, f"{name}-m", [layer])
        quotas.record_manifest_change(session, settings, org.id, repo.id)
        repo_id = repo.id

    with server.db() as session:
        repo = session.get(Repository, repo_id)
        verdict = quotas.evaluate(session, settings, repo.namespace_user_id, 600)
        assert verdict.severity is QuotaLimitType.WARNING
        assert verdict.threshold_bytes == 500
        quotas.check_upload_start(session, settings, repo.namespace_user_id)
        quotas.check_upload_data(
            session, settings, repo.namespace_user_id, repo.id, incoming_bytes=199
        )
        with pytest.raises(quotas.QuotaExceeded):
            quotas.check_upload_data(
                session, settings, repo.namespace_user_id, repo.id, incoming_bytes=200
            )
        # Bytes of uploads in progress in the repository count too.
        session.add(BlobUpload(repository_id=repo.id, byte_count=150))
        session.flush()
        with pytest.raises(quotas.QuotaExceeded):
            quotas.check_upload_data(
                session, settings, repo.namespace_user_id, repo.id, incoming_bytes=50
            )
        session.rollback()

    with server.db() as session:
        repo = session.get(Repository, repo_id)
        big = _blob(session, f"{name}-big", 300)
        _manifest(session, repo, f"{name}-m2", [big])
        with pytest.raises(quotas.QuotaExceeded):
            quotas.check_manifest(session, settings, repo.namespace_user_id)
        session.rollback()
    with server.db() as session:
        repo = session.get(Repository, repo_id)
        assert quotas.namespace_usage(session, repo.namespace_user_id) == 600
        # Reaching the threshold exactly already counts as crossing it.
        assert (
            quotas.evaluate(session, settings, repo.namespace_user_id, 800).severity
            is QuotaLimitType.REJECT
        )


def test_system_default_reject_applies_without_a_quota(server: LiveServer, user: TestUser) -> None:
    settings = server.settings.model_copy(update={"DEFAULT_SYSTEM_REJECT_QUOTA_BYTES": 100})
    name = create_organization(server, user)
    with server.db() as session:
        org = _org(session, name)
        assert quotas.evaluate(session, settings, org.id, 99).severity is None
        assert quotas.evaluate(session, settings, org.id, 100).severity is QuotaLimitType.REJECT
        assert quotas.evaluate(session, server.settings, org.id, 10**12).severity is None
