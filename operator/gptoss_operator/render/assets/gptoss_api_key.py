"""API-key check for every route of the vLLM server, loaded with `vllm serve --middleware`.

The operator ships this file into the pod from a ConfigMap (mounted read-only, on PYTHONPATH).
vLLM's own `--api-key` check only guards paths under /v1, /v2, /inference and /cohere
(vllm/entrypoints/serve/middleware/authenticate.py, GUARDED_PREFIX), which leaves POST
/invocations (SageMaker, runs chat completions), /tokenize, /scale_elastic_ep and others open.
This middleware guards every path except the exact ones listed in GPTOSS_OPEN_PATHS.

It runs as the outermost ASGI layer (vLLM adds `--middleware` classes last), so nothing behind it
sees an unauthenticated request. Standard library only: it runs inside the vLLM image.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]

KEY_ENV = "VLLM_API_KEY"
"""The variable holding the key, set from the Secret by secretKeyRef (never in argv)."""
OPEN_PATHS_ENV = "GPTOSS_OPEN_PATHS"
"""Comma-separated exact paths served without the key (the probes' /health, and /metrics only
when a PodMonitor scrapes it)."""

_BODY = json.dumps(
    {
        "error": {
            "message": "Missing or invalid API key: send it as 'Authorization: Bearer <key>'.",
            "type": "invalid_request_error",
            "code": "invalid_api_key",
        }
    }
).encode()
# RFC 1008 "policy violation": closing a websocket before accept makes the server answer 403.
_WS_POLICY_VIOLATION = 1008


def _digest(value: bytes) -> bytes:
    # Comparing fixed-length digests keeps compare_digest from leaking the key's length.
    return hashlib.sha256(value).digest()


class ApiKeyMiddleware:
    """Pure ASGI middleware: 401 unless `Authorization: Bearer <key>` matches, on every path but
    the open ones. Refuses to start without a key, so a missing variable cannot mean "no auth"."""

    def __init__(self, app: App) -> None:
        self.app = app
        key = os.environ.get(KEY_ENV, "")
        if not key.strip():
            raise RuntimeError(f"{KEY_ENV} is empty: refusing to serve without an API key")
        self._key = _digest(key.encode())
        raw = os.environ.get(OPEN_PATHS_ENV, "")
        self.open_paths = frozenset(p.strip() for p in raw.split(",") if p.strip())

    def authorized(self, scope: Scope) -> bool:
        """True when the request carries exactly one Authorization header with the key."""
        values = [v for k, v in scope.get("headers") or [] if k.lower() == b"authorization"]
        if len(values) != 1:
            return False
        scheme, _, token = values[0].partition(b" ")
        if scheme.lower() != b"bearer" or not token:
            return False
        return hmac.compare_digest(_digest(token), self._key)

    def _path(self, scope: Scope) -> str:
        # Starlette puts root_path in front of path; vLLM's routes match without it.
        path: str = scope.get("path", "")
        root: str = scope.get("root_path", "")
        return path[len(root) :] if root and path.startswith(root) else path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind not in ("http", "websocket"):  # lifespan: nothing to authenticate
            await self.app(scope, receive, send)
            return
        # Every method, OPTIONS included: browsers' CORS preflight belongs at the Gateway.
        if self._path(scope) in self.open_paths or self.authorized(scope):
            await self.app(scope, receive, send)
            return
        if kind == "websocket":
            await send({"type": "websocket.close", "code": _WS_POLICY_VIOLATION})
            return
        await send(
            {
                "type": "http.response.start",
                "status": 401,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(_BODY)).encode()),
                    (b"www-authenticate", b'Bearer realm="gpt-oss"'),
                ],
            }
        )
        await send({"type": "http.response.body", "body": _BODY})
