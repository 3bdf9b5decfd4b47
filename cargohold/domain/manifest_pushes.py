"""Manifest pushes and deletes through /v2: the quota rules, the writes and their audit entries.

The caller owns the transaction: it commits on success, and on QuotaExceeded rolls the push
back before recording the refusal's notice.
"""

from __future__ import annotations

from cargohold.config import Settings
from cargohold.db.session import DbSession
from cargohold.domain import manifests, quota, registry_audit, repo_notifications, tags
from cargohold.domain.registry_audit import Actor
from cargohold.domain.repositories import RepositoryRef


def push_manifest(
    session: DbSession,
    settings: Settings,
    repo: RepositoryRef,
    namespace: str,
    name: str,
    tag: str | None,
    parsed: manifests.ParsedManifest,
    labels: dict[str, str],
    actor: Actor,
) -> None:
    """Store a manifest pushed to `tag`, or by digest when `tag` is None."""
    # A namespace already at a Reject limit refuses before any blob is looked up.
    limited = quota.check_upload_start(session, settings, repo.namespace_id)
    manifest = manifests.store_manifest(session, repo.id, parsed, labels)
    quota.record_manifest_push(
        session,
        settings,
        repo.namespace_id,
        repo.id,
        namespace_enabled=repo.namespace_enabled,
        manifest_id=manifest.id,
        new_blob_ids=manifest.new_blob_ids,
    )
    if tag is None:
        # Referrers pushed by digest stay until deleted; other pushes by digest are kept for a
        # while so that an index or a tag can adopt them.
        lifetime = None if parsed.subject is not None else settings.PUSH_TEMP_TAG_EXPIRATION_SEC
        tags.create_temp_tag(session, repo.id, manifest.id, lifetime)
        log_key = {"manifest_digest": parsed.digest}
    else:
        # Quay checks at the tag push: an index's children are pushed by digest.
        quota.check_manifest(session, settings, repo.namespace_id, limited=limited)
        tags.set_tag(session, repo.id, tag, manifest.id, keep_same=True)
        log_key = {"tag": tag, "manifest_digest": parsed.digest}
        repo_notifications.spawn_push(
            session, settings, repo.id, namespace, name, tag, actor.username
        )
    registry_audit.log_repository_action(
        session,
        "push_repo",
        repo,
        namespace,
        name,
        actor,
        {**log_key, "mediaType": parsed.media_type},
    )


def delete_manifest(
    session: DbSession,
    repo: RepositoryRef,
    namespace: str,
    name: str,
    reference: str,
    actor: Actor,
) -> None:
    """End the tag `reference`, or every tag of the manifest `reference` names by digest."""
    if ":" in reference:
        manifest = manifests.get_manifest(session, repo.id, reference)
        ended = (
            tags.end_tags_for_manifest(session, repo.id, manifest.id)
            if manifest is not None
            else []
        )
        names = [row.name for row in ended if not row.hidden]
        digest = reference
    else:
        ended_tag = tags.delete_tag(session, repo.id, reference)
        ended = [ended_tag] if ended_tag is not None else []
        names = [reference] if ended else []
        digest = ended[0].manifest.digest if ended else reference
    if not ended:
        raise manifests.ManifestUnknown(reference=reference)
    for tag in names or [None]:
        registry_audit.log_repository_action(
            session, "delete_tag", repo, namespace, name, actor, {"tag": tag, "digest": digest}
        )
