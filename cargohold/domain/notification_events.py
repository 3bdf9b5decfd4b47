"""Repository notification events: their names, data, summaries, filters and sample data.

Event data has Quay's shape: every event carries the repository's name, Docker URL and home
page, plus its own keys. Summaries are the subject lines of e-mail and Slack messages.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cargohold.config import Settings

REPO_PUSH = "repo_push"
BUILD_QUEUED = "build_queued"
BUILD_START = "build_start"
BUILD_SUCCESS = "build_success"
BUILD_FAILURE = "build_failure"
BUILD_CANCELLED = "build_cancelled"
MIRROR_STARTED = "repo_mirror_sync_started"
MIRROR_SUCCESS = "repo_mirror_sync_success"
MIRROR_FAILED = "repo_mirror_sync_failed"
IMAGE_EXPIRY = "repo_image_expiry"

BUILD_EVENTS = frozenset({BUILD_QUEUED, BUILD_START, BUILD_SUCCESS, BUILD_FAILURE, BUILD_CANCELLED})
SAMPLE_BUILD_ID = "fake-build-id"


@dataclass(frozen=True)
class EventKind:
    name: str
    # Quay's levels: how Slack colours the message.
    level: str
    summary: Callable[[dict[str, Any]], str]
    sample: Callable[[dict[str, Any]], dict[str, Any]]


def _build_summary(verb: str) -> Callable[[dict[str, Any]], str]:
    def summary(data: dict[str, Any]) -> str:
        build_id = str(data.get("build_id", ""))
        return f"Build {verb} for repository {data.get('repository')} [{build_id[:7]}]"

    return summary


_SAMPLE_TRIGGER_METADATA = {
    "default_branch": "master",
    "ref": "refs/heads/somebranch",
    "commit": "42d4a62c53350993ea41069e9f2cfdefb0df097d",
    "commit_info": {
        "url": "http://path/to/the/commit",
        "message": "Some commit message",
        "author": {"username": "fakeauthor", "url": "http://path/to/fake/author/in/scm"},
    },
}


def _build_sample(extra: dict[str, Any]) -> Callable[[dict[str, Any]], dict[str, Any]]:
    def sample(event_config: dict[str, Any]) -> dict[str, Any]:
        return {
            "build_id": SAMPLE_BUILD_ID,
            "build_name": "some-fake-build",
            "docker_tags": ["latest", "foo", "bar"],
            "trigger_id": "1245634",
            "trigger_kind": "GitHub",
            "trigger_metadata": _SAMPLE_TRIGGER_METADATA,
            **extra,
        }

    return sample


def _mirror_sample(event_config: dict[str, Any]) -> dict[str, Any]:
    return {"message": "TEST NOTIFICATION"}


EVENTS: dict[str, EventKind] = {
    kind.name: kind
    for kind in (
        EventKind(
            REPO_PUSH,
            "primary",
            lambda data: f"Repository {data.get('repository')} updated",
            lambda config: {"updated_tags": ["latest", "foo"], "pruned_image_count": 3},
        ),
        EventKind(
            BUILD_QUEUED,
            "info",
            _build_summary("queued"),
            _build_sample({"is_manual": False, "manual_user": None}),
        ),
        EventKind(BUILD_START, "info", _build_summary("started"), _build_sample({})),
        EventKind(BUILD_SUCCESS, "success", _build_summary("succeeded"), _build_sample({})),
        EventKind(
            BUILD_FAILURE,
            "error",
            _build_summary("failure"),
            _build_sample({"error_message": "This is a fake error message"}),
        ),
        EventKind(BUILD_CANCELLED, "info", _build_summary("cancelled"), _build_sample({})),
        EventKind(
            MIRROR_STARTED,
            "info",
            lambda data: f"Repository Mirror started for {data.get('message')}",
            _mirror_sample,
        ),
        EventKind(
            MIRROR_SUCCESS,
            "success",
            lambda data: f"Repository Mirror success for {data.get('message')}",
            _mirror_sample,
        ),
        EventKind(
            MIRROR_FAILED,
            "error",
            lambda data: f"Repository Mirror failed for {data.get('message')}",
            _mirror_sample,
        ),
        EventKind(
            IMAGE_EXPIRY,
            "info",
            lambda data: f"Repository {data.get('repository')} image(s) expiring",
            lambda config: {"tags": ["latest", "v1"], "expiring_in": f"{config.get('days')} days"},
        ),
    )
}


def repository_event_data(
    settings: Settings,
    namespace: str,
    name: str,
    extra: dict[str, Any] | None = None,
    *,
    subpage: str | None = None,
) -> dict[str, Any]:
    """The keys every repository event carries, then the event's own."""
    full_name = f"{namespace}/{name}"
    homepage = f"{settings.server_url}/repository/{full_name}"
    if subpage:
        homepage += subpage if subpage.startswith("/") else "/" + subpage
    data: dict[str, Any] = {
        "repository": full_name,
        "namespace": namespace,
        "name": name,
        "docker_url": f"{settings.SERVER_HOSTNAME}/{full_name}",
        "homepage": homepage,
    }
    data.update(extra or {})
    return data


def sample_data(
    settings: Settings, event: str, namespace: str, name: str, event_config: dict[str, Any]
) -> dict[str, Any]:
    """What the test endpoint delivers: realistic data for the event, marked as a sample."""
    subpage = f"/build/{SAMPLE_BUILD_ID}" if event in BUILD_EVENTS else None
    return repository_event_data(
        settings, namespace, name, EVENTS[event].sample(event_config), subpage=subpage
    )


def summary(event: str, data: dict[str, Any]) -> str:
    kind = EVENTS.get(event)
    return kind.summary(data) if kind else f"Notification for {data.get('repository')}"


def level(event: str) -> str:
    kind = EVENTS.get(event)
    return kind.level if kind else "info"


def should_perform(event: str, event_config: dict[str, Any], data: dict[str, Any]) -> bool:
    """Build events honour `ref-regex`: fire only for builds whose git ref matches it."""
    if event not in BUILD_EVENTS:
        return True
    ref_regex = event_config.get("ref-regex") or None
    if ref_regex is None:
        return True
    ref = (data.get("trigger_metadata") or {}).get("ref")
    if not isinstance(ref, str):
        return False
    try:
        return re.match(str(ref_regex), ref) is not None
    except re.error:
        return False
