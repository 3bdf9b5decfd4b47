"""Quota JSON as Quay renders it: quotas and limits, and the `quotas` / `quota_report` fields
that views of organizations, users and repositories carry."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from cargohold.config import Settings
from cargohold.db.models.quota import NamespaceQuota, QuotaLimit
from cargohold.db.models.registry import Repository
from cargohold.db.session import DbSession
from cargohold.domain import quota as quotas


def limit_view(limit: QuotaLimit) -> dict[str, Any]:
    return {"id": limit.id, "type": limit.limit_type.value, "limit_percent": limit.percent_of_limit}


def quota_view(settings: Settings, quota: NamespaceQuota) -> dict[str, Any]:
    return {
        "id": quota.id,
        "limit_bytes": int(quota.limit_bytes),
        "limit": quotas.format_human_size(quota.limit_bytes),
        "default_config": False,
        "limits": [limit_view(limit) for limit in quota.limits],
        "default_config_exists": settings.DEFAULT_SYSTEM_REJECT_QUOTA_BYTES != 0,
    }


def default_quota_view(settings: Settings) -> dict[str, Any]:
    limit_bytes = settings.DEFAULT_SYSTEM_REJECT_QUOTA_BYTES
    return {
        "id": None,
        "limit_bytes": limit_bytes,
        "limit": quotas.format_human_size(limit_bytes),
        "default_config": True,
        "limits": [],
        "default_config_exists": True,
    }


def short_quota_view(quota: NamespaceQuota) -> dict[str, Any]:
    return {
        "id": quota.id,
        "limit_bytes": int(quota.limit_bytes),
        "limits": [limit_view(limit) for limit in quota.limits],
    }


def _namespace_fields(report: quotas.NamespaceQuotaReport) -> dict[str, Any]:
    return {
        "quotas": [short_quota_view(report.quota)] if report.quota is not None else [],
        "quota_report": {
            "quota_bytes": report.used_bytes,
            "configured_quota": report.configured_bytes,
            "running_backfill": report.backfill_status,
            "backfill_status": report.backfill_status,
        },
    }


def namespace_quota_fields(
    db: DbSession, settings: Settings, namespace_ids: Iterable[int]
) -> dict[int, dict[str, Any]]:
    """`quotas` and `quota_report` for each namespace, loaded in two queries for any number.

    Views of organizations and users merge the result into their JSON when
    `quota_fields_enabled(settings)`.
    """
    reports = quotas.namespace_quota_reports(db, settings, namespace_ids)
    return {namespace_id: _namespace_fields(report) for namespace_id, report in reports.items()}


def repository_quota_reports(
    db: DbSession, settings: Settings, repositories: Iterable[Repository]
) -> dict[int, dict[str, Any]]:
    """`quota_report` for each repository of a repository list, in two queries."""
    reports = quotas.repository_quota_reports(db, settings, repositories)
    return {
        repo_id: {"quota_bytes": report.used_bytes, "configured_quota": report.configured_bytes}
        for repo_id, report in reports.items()
    }
