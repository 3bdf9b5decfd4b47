"""A local OIDC issuer: discovery document and JWKS served on a loopback address.

It signs tokens with an RSA key generated per instance and counts the requests it answers,
so tests can check what the registry fetched and how often.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

ISSUER_HOST = "127.0.0.3"


def new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


class LocalIssuer:
    def __init__(self, host: str = ISSUER_HOST) -> None:
        self.key = new_key()
        self.kid = "test-key-1"
        self.requests: Counter[str] = Counter()
        self.discovery_override: dict[str, Any] | None = None
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                issuer.requests[self.path] += 1
                if self.path == "/.well-known/openid-configuration":
                    self._send(issuer.discovery())
                elif self.path == "/keys":
                    self._send(issuer.jwks())
                else:
                    self.send_error(404)

            def _send(self, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self._httpd = ThreadingHTTPServer((host, 0), Handler)
        self.url = f"http://{host}:{self._httpd.server_address[1]}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    def __enter__(self) -> LocalIssuer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def discovery(self) -> dict[str, Any]:
        if self.discovery_override is not None:
            return self.discovery_override
        return {"issuer": self.url, "jwks_uri": f"{self.url}/keys"}

    def jwks(self) -> dict[str, Any]:
        jwk = json.loads(RSAAlgorithm.to_jwk(self.key.public_key()))
        return {"keys": [{**jwk, "kid": self.kid, "use": "sig", "alg": "RS256"}]}

    def token(
        self,
        subject: str,
        audience: str | list[str],
        *,
        lifetime_s: int = 300,
        key: rsa.RSAPrivateKey | None = None,
        kid: str | None = None,
        **claims: Any,
    ) -> str:
        now = int(time.time())
        body = {
            "iss": self.url,
            "sub": subject,
            "aud": audience,
            "iat": now,
            "nbf": now,
            "exp": now + lifetime_s,
            **claims,
        }
        headers = {"kid": kid or self.kid}
        return jwt.encode(body, key or self.key, "RS256", headers)
