"""Signing keys of outside OIDC issuers, read from their discovery document and JWKS.

Every fetch goes through the outbound guard, so an issuer is contacted only when its address
is public or `SSRF_ALLOWED_HOSTS` opens it. Plain http is accepted only for issuers the
allow-list names: anywhere else the keys could be swapped in transit. Key sets are cached per
process for an hour; a token naming an unknown `kid` refreshes its issuer's set, at most once
a minute, so rotation at the issuer is picked up without letting callers drive our traffic.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
import jwt

from cargohold.adapters import outbound
from cargohold.config import Settings
from cargohold.domain.errors import Invalid

DISCOVERY_PATH = "/.well-known/openid-configuration"
KEY_SET_TTL_S = 3600.0
REFRESH_INTERVAL_S = 60.0
FETCH_TIMEOUT_S = 5.0
MAX_DOCUMENT_BYTES = 512 * 1024
MAX_REDIRECTS = 3


class IssuerKeyError(Invalid):
    """The issuer's keys could not be read or do not include the token's key: either way the
    token presented cannot be checked, so the request is refused as invalid."""


@dataclass
class _KeySet:
    keys: dict[str, jwt.PyJWK]
    fetched_at: float


def _require_secure(settings: Settings, url: str) -> None:
    """https, or http to a host the operator opened on purpose."""
    parts = urlsplit(url)
    if parts.scheme == "https":
        return
    if parts.scheme != "http" or not parts.hostname:
        raise IssuerKeyError("OIDC server must be accessed over SSL")
    allowed = outbound.allow_list(settings)
    address = outbound.parse_address(parts.hostname)
    port = parts.port or 80
    if allowed.allows_name(parts.hostname, port) or (
        address is not None and allowed.allows_address(address)
    ):
        return
    raise IssuerKeyError("OIDC server must be accessed over SSL")


def _get_json(client: httpx.Client, url: str) -> Any:
    with client.stream("GET", url, headers={"Accept": "application/json"}) as response:
        if response.status_code != 200:
            raise IssuerKeyError(f"{url} answered {response.status_code}")
        body = bytearray()
        for chunk in response.iter_bytes():
            body.extend(chunk)
            if len(body) > MAX_DOCUMENT_BYTES:
                raise IssuerKeyError(f"{url} answered with a document that is too large")
    try:
        return json.loads(body)
    except ValueError as exc:
        raise IssuerKeyError(f"{url} did not answer with JSON") from exc


def _parse_key_set(document: Any) -> dict[str, jwt.PyJWK]:
    entries = document.get("keys") if isinstance(document, dict) else None
    if not isinstance(entries, list):
        raise IssuerKeyError("The issuer's JWKS has no keys")
    keys: dict[str, jwt.PyJWK] = {}
    for entry in entries:
        if not isinstance(entry, dict) or not isinstance(entry.get("kid"), str):
            continue
        if entry.get("use", "sig") != "sig":
            continue
        try:
            keys[entry["kid"]] = jwt.PyJWK(entry)
        except jwt.PyJWTError:
            continue  # key types we do not verify with (symmetric, unknown curves)
    return keys


def fetch_key_set(settings: Settings, issuer: str) -> dict[str, jwt.PyJWK]:
    """Discovery document, then its `jwks_uri`, both through the outbound guard."""
    _require_secure(settings, issuer)
    discovery_url = issuer.rstrip("/") + DISCOVERY_PATH
    try:
        with outbound.guarded_client(
            settings,
            timeout=FETCH_TIMEOUT_S,
            follow_redirects=True,
            max_redirects=MAX_REDIRECTS,
        ) as client:
            discovery = _get_json(client, discovery_url)
            if not isinstance(discovery, dict):
                raise IssuerKeyError("Could not parse OIDC discovery information")
            if str(discovery.get("issuer", "")).rstrip("/") != issuer.rstrip("/"):
                raise IssuerKeyError("The discovery document names a different issuer")
            jwks_uri = discovery.get("jwks_uri")
            if not isinstance(jwks_uri, str) or not jwks_uri:
                raise IssuerKeyError("The discovery document has no jwks_uri")
            _require_secure(settings, jwks_uri)
            return _parse_key_set(_get_json(client, jwks_uri))
    except outbound.OutboundRefused as exc:
        raise IssuerKeyError(str(exc)) from exc
    except httpx.HTTPError as exc:
        raise IssuerKeyError(f"Could not load OIDC discovery information: {exc}") from exc


class IssuerKeys:
    """Per-process cache of issuers' key sets."""

    def __init__(self) -> None:
        self._sets: dict[str, _KeySet] = {}
        self._lock = threading.Lock()

    def key(self, settings: Settings, issuer: str, kid: str) -> jwt.PyJWK:
        now = time.monotonic()
        cached = self._sets.get(issuer)
        if cached is not None and now - cached.fetched_at < KEY_SET_TTL_S:
            found = cached.keys.get(kid)
            if found is not None or now - cached.fetched_at < REFRESH_INTERVAL_S:
                if found is None:
                    raise IssuerKeyError(f"Public key {kid} not found")
                return found
        keys = fetch_key_set(settings, issuer)
        with self._lock:
            self._sets[issuer] = _KeySet(keys, time.monotonic())
        found = keys.get(kid)
        if found is None:
            raise IssuerKeyError(f"Public key {kid} not found")
        return found
