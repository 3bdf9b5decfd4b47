"""Prometheus metrics: what is counted, the /metrics endpoint and who may read it.

Counters live in prometheus_client's multi-process mode whenever PROMETHEUS_MULTIPROC_DIR is
set (`cargohold serve` sets it to a fresh folder before this module is imported),
so a scrape sums every process of one server. Queue depths are read from the database at
scrape time: the database is the queue, and every replica sees the same numbers.

Access: /metrics answers only clients whose address is in METRICS_ALLOWED_NETWORKS
(loopback by default). A Prometheus elsewhere is let in by naming its network; nothing is
published to the world unless an operator writes 0.0.0.0/0 there.
"""

from __future__ import annotations

import ipaddress
import os
import re
import time
from collections.abc import Iterable
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker
from starlette.types import Message, Receive, Scope, Send

from cargohold import zero_copy
from cargohold.request_log import HttpMiddleware

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

REQUESTS = Counter(
    "cargohold_http_requests",
    "HTTP requests answered, by route template and status",
    ["method", "route", "status"],
)
LATENCY = Histogram(
    "cargohold_http_request_duration_seconds",
    "Time from request start to the end of the response body",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
)
BYTES_PUSHED = Counter("cargohold_registry_bytes_pushed", "Bytes received by /v2 pushes")
BYTES_PULLED = Counter("cargohold_registry_bytes_pulled", "Bytes sent by /v2 pulls")
UPLOADS_IN_FLIGHT = Gauge(
    "cargohold_uploads_in_flight",
    "Blob upload requests being received right now",
    multiprocess_mode="livesum",
)
BUILD_OUTCOMES = Counter("cargohold_build_outcomes", "Finished builds by outcome", ["outcome"])
MIRROR_OUTCOMES = Counter(
    "cargohold_mirror_sync_outcomes", "Finished mirror syncs by outcome", ["outcome"]
)
GC_RECLAIMED_BYTES = Counter(
    "cargohold_gc_reclaimed_bytes", "Bytes of blobs deleted by garbage collection"
)
WORKER_FAILURES = Counter(
    "cargohold_worker_failures", "Worker passes that raised an error", ["worker"]
)

# /v2 routes as templates, so that label values stay few whatever the repository names.
_V2_TEMPLATES = [
    (re.compile(r"^/v2/?$"), "/v2/"),
    (re.compile(r"^/v2/auth$"), "/v2/auth"),
    (re.compile(r"^/v2/_catalog$"), "/v2/_catalog"),
    (re.compile(r"^/v2/.+/manifests/[^/]+$"), "/v2/{name}/manifests/{reference}"),
    (re.compile(r"^/v2/.+/blobs/uploads/?$"), "/v2/{name}/blobs/uploads/"),
    (re.compile(r"^/v2/.+/blobs/uploads/[^/]+$"), "/v2/{name}/blobs/uploads/{uuid}"),
    (re.compile(r"^/v2/.+/blobs/[^/]+$"), "/v2/{name}/blobs/{digest}"),
    (re.compile(r"^/v2/.+/tags/list$"), "/v2/{name}/tags/list"),
    (re.compile(r"^/v2/.+/referrers/[^/]+$"), "/v2/{name}/referrers/{digest}"),
]
_PUSH_ROUTES = {"/v2/{name}/blobs/uploads/", "/v2/{name}/blobs/uploads/{uuid}"}
_PULL_ROUTES = {"/v2/{name}/blobs/{digest}", "/v2/{name}/manifests/{reference}"}


def route_template(scope: Scope) -> str:
    path = scope.get("path", "")
    if path == "/v2" or path.startswith("/v2/"):
        for pattern, template in _V2_TEMPLATES:
            if pattern.match(path):
                return template
        return "/v2/other"
    route = scope.get("route")
    template = getattr(route, "path", None)
    return template if isinstance(template, str) else "other"


class QueueDepthCollector(Collector):
    """Work waiting per worker, read from the shared database when scraped."""

    def __init__(self, session_factory: sessionmaker[Session]) -> None:
        self.session_factory = session_factory

    def collect(self) -> Iterable[GaugeMetricFamily]:
        from cargohold.db.base import utcnow
        from cargohold.db.models.queue import QueueItem
        from cargohold.db.models.registry import BlobUpload
        from cargohold.domain import mirror

        family = GaugeMetricFamily(
            "cargohold_queue_depth", "Items waiting or being worked on, per queue", labels=["queue"]
        )
        with self.session_factory() as session:
            rows = session.execute(
                select(QueueItem.queue_name, func.count())
                .where(QueueItem.retries_remaining > 0)
                .group_by(QueueItem.queue_name)
            ).all()
            for name, count in rows:
                family.add_metric([name], count)
            family.add_metric(["repomirror"], mirror.count_due(session, utcnow()))
            sessions = session.scalar(select(func.count()).select_from(BlobUpload)) or 0
        yield family
        yield GaugeMetricFamily(
            "cargohold_upload_sessions", "Blob upload sessions started and not finished", sessions
        )


_queue_collectors: dict[int, QueueDepthCollector] = {}


def scrape_registry(session_factory: sessionmaker[Session]) -> CollectorRegistry:
    """What a scrape reads: every process's files in multi-process mode (a fresh registry
    per scrape, as prometheus_client asks), else this process's default registry."""
    if os.environ.get(MULTIPROC_ENV):
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
        registry.register(QueueDepthCollector(session_factory))
        return registry
    if id(session_factory) not in _queue_collectors:
        collector = QueueDepthCollector(session_factory)
        REGISTRY.register(collector)
        _queue_collectors[id(session_factory)] = collector
    return REGISTRY


def render(session_factory: sessionmaker[Session]) -> bytes:
    return generate_latest(scrape_registry(session_factory))


def client_allowed(host: str | None, networks: list[str]) -> bool:
    if host is None:
        return False
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return any(address in ipaddress.ip_network(net, strict=False) for net in networks)


_BODY_METHODS = frozenset({"POST", "PATCH", "PUT"})
# prometheus_client's labels() takes a lock and checks its arguments on every call; the
# children it returns live as long as the metric anyway, so they are kept here by labels.
_request_counters: dict[tuple[str, str, str], Any] = {}
_latencies: dict[tuple[str, str], Any] = {}


class Observation:
    """One HTTP request being counted: status, bytes each way and duration."""

    __slots__ = ("scope", "started", "status", "sent", "received", "upload")

    def __init__(self, scope: Scope) -> None:
        self.scope = scope
        self.started = time.perf_counter()
        self.status = 500
        self.sent = 0
        self.received = 0
        self.upload = scope["method"] in _BODY_METHODS and "/blobs/uploads" in scope["path"]
        if self.upload:
            UPLOADS_IN_FLIGHT.inc()

    def receive(self, receive: Receive) -> Receive:
        """`receive`, counting body bytes for the methods that send a body."""
        if self.scope["method"] not in _BODY_METHODS:
            return receive

        async def counting_receive() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                self.received += len(message.get("body", b""))
            return message

        return counting_receive

    def saw(self, message: Message) -> None:
        """Note a message sent to the client."""
        if message["type"] == "http.response.start":
            self.status = message["status"]
        elif message["type"] == "http.response.body":
            self.sent += len(message.get("body", b""))
        elif message["type"] == zero_copy.EXTENSION:
            self.sent += message.get("count") or 0

    def finish(self) -> None:
        if self.upload:
            UPLOADS_IN_FLIGHT.dec()
        elapsed = time.perf_counter() - self.started
        scope = self.scope
        route = route_template(scope)
        method = scope["method"]
        counter_key = (method, route, str(self.status))
        counter = _request_counters.get(counter_key)
        if counter is None:
            counter = _request_counters[counter_key] = REQUESTS.labels(*counter_key)
        counter.inc()
        latency = _latencies.get((method, route))
        if latency is None:
            latency = _latencies[(method, route)] = LATENCY.labels(method, route)
        latency.observe(elapsed)
        if route in _PUSH_ROUTES or (
            route == "/v2/{name}/manifests/{reference}" and method == "PUT"
        ):
            BYTES_PUSHED.inc(self.received)
        if route in _PULL_ROUTES and method == "GET" and self.status < 300:
            BYTES_PULLED.inc(self.sent)


class MetricsMiddleware(HttpMiddleware):
    """Counts every HTTP request by route template, status and duration, and /v2 bytes."""

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        observation = Observation(scope)

        async def counting_send(message: Message) -> None:
            observation.saw(message)
            await send(message)

        try:
            await self.app(scope, observation.receive(receive), counting_send)
        finally:
            observation.finish()


def mark_process_dead(pid: int) -> None:
    """Drop a finished process's live gauges from the shared folder."""
    if os.environ.get(MULTIPROC_ENV):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid)


CONTENT_TYPE = CONTENT_TYPE_LATEST
