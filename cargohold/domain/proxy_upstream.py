"""The client side of a pull-through: talking to an upstream registry.

Every request goes through the outbound guard (`outbound.guarded_client`), so an upstream on
a loopback or private address works only when `SSRF_ALLOWED_HOSTS` allows it. Upstream
auth follows the distribution protocol: on a 401, a Bearer challenge is answered with a token
from its realm (with the configured credentials, if any), a Basic challenge with the
credentials themselves.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator
from contextlib import contextmanager

import httpx

from cargohold.adapters import outbound
from cargohold.config import Settings
from cargohold.domain import manifests
from cargohold.domain.errors import Unavailable
from cargohold.domain.proxy_cache import Upstream

_CHALLENGE_PARAM = re.compile(r'(\w+)=(?:"([^"]*)"|([^,\s]*))')
_ACCEPT = ", ".join(
    [
        manifests.OCI_INDEX,
        manifests.DOCKER_LIST,
        manifests.OCI_MANIFEST,
        manifests.DOCKER_SCHEMA2,
    ]
)
_TIMEOUT = httpx.Timeout(30.0, connect=10.0)


class UpstreamError(Unavailable):
    """The upstream refused or failed; the message is the one Quay gives clients."""

    def __init__(self, detail: str, status: int | None = None) -> None:
        super().__init__(
            "the requested image may not exist in the upstream registry, or the configured "
            "Quay organization credentials have insufficient rights to access it "
            f"({detail})"
        )
        self.status = status


class UpstreamNotFound(UpstreamError):
    """The upstream answered that the manifest or blob does not exist."""


class UpstreamAuthError(UpstreamError):
    """The upstream refused the credentials."""


class UpstreamBlocked(UpstreamError):
    """The outbound guard refused the upstream's address."""


class UpstreamUnavailable(UpstreamError):
    """The upstream could not be reached, or failed (5xx): cached content may still serve."""


def parse_challenge(value: str) -> tuple[str, dict[str, str]]:
    scheme, _, rest = value.strip().partition(" ")
    params = {
        m.group(1).lower(): m.group(2) or m.group(3) or "" for m in _CHALLENGE_PARAM.finditer(rest)
    }
    return scheme.lower(), params


class UpstreamClient:
    """One upstream repository, with its auth; close it (or use `with`) when done."""

    def __init__(self, settings: Settings, upstream: Upstream, repository: str | None) -> None:
        self.upstream = upstream
        self.repository = upstream.repository(repository) if repository else None
        self._client = outbound.guarded_client(
            settings, timeout=_TIMEOUT, follow_redirects=True, verify=not upstream.insecure
        )
        self._auth_header: str | None = None

    def __enter__(self) -> UpstreamClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._client.close()

    @property
    def _credentials(self) -> tuple[str, str] | None:
        if self.upstream.username is None:
            return None
        return self.upstream.username, self.upstream.password or ""

    def _url(self, suffix: str) -> str:
        return f"{self.upstream.base_url}/v2/{self.repository}/{suffix}"

    def _authorize(self, challenge: str) -> None:
        scheme, params = parse_challenge(challenge)
        if scheme == "basic":
            if self._credentials is None:
                raise UpstreamAuthError("the upstream requires credentials", 401)
            user, password = self._credentials
            encoded = base64.b64encode(f"{user}:{password}".encode()).decode()
            self._auth_header = f"Basic {encoded}"
            return
        if scheme != "bearer" or not params.get("realm"):
            raise UpstreamAuthError(f"unsupported authentication challenge {scheme}", 401)
        query = {"service": params.get("service", "")}
        if self.repository is not None:
            query["scope"] = f"repository:{self.repository}:pull"
        try:
            response = self._client.get(
                params["realm"], params=query, auth=self._credentials or httpx.USE_CLIENT_DEFAULT
            )
        except outbound.OutboundRefused as exc:
            raise UpstreamBlocked(str(exc)) from exc
        except httpx.HTTPError as exc:
            raise UpstreamUnavailable(f"token request failed: {exc}") from exc
        if response.status_code in (401, 403):
            raise UpstreamAuthError("the upstream refused the credentials", response.status_code)
        if response.status_code != 200:
            raise UpstreamUnavailable("token request failed", response.status_code)
        try:
            body = response.json()
            token = body.get("token") or body.get("access_token")
        except (ValueError, AttributeError):
            token = None
        if not isinstance(token, str) or not token:
            raise UpstreamAuthError("the upstream's token answer holds no token", 401)
        self._auth_header = f"Bearer {token}"

    def _headers(self, extra: dict[str, str] | None) -> dict[str, str]:
        headers = dict(extra or {})
        if self._auth_header is not None:
            headers["Authorization"] = self._auth_header
        return headers

    def _send(self, method: str, url: str, headers: dict[str, str] | None, stream: bool):
        try:
            request = self._client.build_request(method, url, headers=self._headers(headers))
            return self._client.send(request, stream=stream)
        except outbound.OutboundRefused as exc:
            raise UpstreamBlocked(str(exc)) from exc
        except httpx.HTTPError as exc:
            raise UpstreamUnavailable(f"the upstream could not be reached: {exc}") from exc

    def request(
        self, method: str, url: str, headers: dict[str, str] | None = None, *, stream: bool = False
    ) -> httpx.Response:
        """Send, answering one auth challenge; raises for every answer but 2xx."""
        response = self._send(method, url, headers, stream)
        if response.status_code == 401 and self._auth_header is None:
            challenge = response.headers.get("www-authenticate", "")
            response.close()
            self._authorize(challenge)
            response = self._send(method, url, headers, stream)
        if response.status_code < 300:
            return response
        response.close()
        status = response.status_code
        if status in (401, 403):
            raise UpstreamAuthError("the upstream refused access", status)
        if status == 404:
            raise UpstreamNotFound("not found upstream", status)
        if status >= 500 or status == 429:
            raise UpstreamUnavailable(f"the upstream answered {status}", status)
        raise UpstreamError(f"the upstream answered {status}", status)

    def ping(self) -> int:
        """The status of the upstream's `/v2/` after logging in when credentials are set."""
        url = f"{self.upstream.base_url}/v2/"
        response = self._send("GET", url, None, False)
        if response.status_code == 401 and self._credentials is not None:
            self._authorize(response.headers.get("www-authenticate", ""))
            response = self._send("GET", url, None, False)
            if response.status_code in (401, 403):
                raise UpstreamAuthError("the upstream refused the credentials", 401)
        return response.status_code

    def manifest_digest(self, reference: str) -> str | None:
        response = self.request("HEAD", self._url(f"manifests/{reference}"), {"Accept": _ACCEPT})
        return response.headers.get("docker-content-digest")

    def manifest(self, reference: str) -> tuple[bytes, str | None]:
        """The manifest's bytes and content type, refused when larger than a manifest may be."""
        response = self.request(
            "GET", self._url(f"manifests/{reference}"), {"Accept": _ACCEPT}, stream=True
        )
        try:
            parts: list[bytes] = []
            size = 0
            for chunk in response.iter_bytes():
                size += len(chunk)
                if size > manifests.MAX_MANIFEST_BYTES:
                    raise UpstreamError("the upstream's manifest is too large")
                parts.append(chunk)
        except httpx.HTTPError as exc:
            raise UpstreamUnavailable(f"reading the manifest failed: {exc}") from exc
        finally:
            response.close()
        return b"".join(parts), response.headers.get("content-type")

    @contextmanager
    def blob(self, digest: str) -> Iterator[httpx.Response]:
        """The upstream's blob response, streaming (identity encoding: bytes as hashed)."""
        response = self.request(
            "GET", self._url(f"blobs/{digest}"), {"Accept-Encoding": "identity"}, stream=True
        )
        try:
            yield response
        finally:
            response.close()
