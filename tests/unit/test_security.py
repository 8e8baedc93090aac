"""The API-key middleware (as the pod loads it), the pod's security context and the
NetworkPolicy's metrics path. vLLM's real application is exercised in test_vllm_auth_contract."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from gptoss_operator.api import GptOssDeploymentSpec
from gptoss_operator.render import render_children
from gptoss_operator.render.assets import gptoss_api_key
from gptoss_operator.render.assets.gptoss_api_key import ApiKeyMiddleware
from gptoss_operator.render.auth import MIDDLEWARE, middleware_source

KEY = "sk-test-0123456789"


class _Inner:
    """The application behind the middleware: records what reached it."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        self.seen.append(scope.get("path") or scope["type"])
        if scope["type"] == "http":
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"ok"})


def _call(
    app: ApiKeyMiddleware, path: str, headers: list[tuple[bytes, bytes]], kind: str = "http"
) -> list[dict[str, Any]]:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    async def send(message: Any) -> None:
        sent.append(dict(message))

    scope = {"type": kind, "path": path, "method": "POST", "headers": headers, "root_path": ""}
    asyncio.run(app(scope, receive, send))
    return sent


@pytest.fixture
def guarded(monkeypatch: pytest.MonkeyPatch) -> tuple[ApiKeyMiddleware, _Inner]:
    monkeypatch.setenv("VLLM_API_KEY", KEY)
    monkeypatch.setenv("GPTOSS_OPEN_PATHS", "/health,/metrics")
    inner = _Inner()
    return ApiKeyMiddleware(inner), inner


def _bearer(token: str) -> list[tuple[bytes, bytes]]:
    return [(b"authorization", f"Bearer {token}".encode())]


@pytest.mark.parametrize(
    "headers",
    [
        [],
        _bearer("wrong"),
        _bearer(KEY + "x"),
        _bearer(KEY[:-1]),
        _bearer(""),
        [(b"authorization", KEY.encode())],
        [(b"authorization", f"Basic {KEY}".encode())],
        [(b"x-api-key", KEY.encode())],
        # Two Authorization headers: refuse rather than guess which one a proxy meant.
        [*_bearer(KEY), *_bearer("wrong")],
    ],
    ids=["none", "wrong", "longer", "shorter", "empty", "no-scheme", "basic", "other", "two"],
)
def test_refuses_without_the_key(
    guarded: tuple[ApiKeyMiddleware, _Inner], headers: list[tuple[bytes, bytes]]
) -> None:
    app, inner = guarded
    sent = _call(app, "/invocations", headers)
    assert sent[0]["status"] == 401
    assert (b"www-authenticate", b'Bearer realm="gpt-oss"') in sent[0]["headers"]
    assert b"invalid_api_key" in sent[1]["body"]
    assert inner.seen == []


@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER"])
def test_passes_with_the_key(guarded: tuple[ApiKeyMiddleware, _Inner], scheme: str) -> None:
    app, inner = guarded
    sent = _call(app, "/invocations", [(b"Authorization", f"{scheme} {KEY}".encode())])
    assert sent[0]["status"] == 200
    assert inner.seen == ["/invocations"]


@pytest.mark.parametrize(
    ("path", "open_"),
    [
        ("/health", True),
        ("/metrics", True),
        ("/health/", False),
        ("//health", False),
        ("/healthz", False),
        ("/metrics/", False),
        ("/v1/models", False),
        ("/", False),
    ],
)
def test_only_exact_open_paths_skip_the_key(
    guarded: tuple[ApiKeyMiddleware, _Inner], path: str, open_: bool
) -> None:
    app, inner = guarded
    sent = _call(app, path, [])
    assert (sent[0]["status"] == 200) == open_
    assert (inner.seen == [path]) == open_


def test_websocket_closed_without_the_key(guarded: tuple[ApiKeyMiddleware, _Inner]) -> None:
    app, inner = guarded
    assert _call(app, "/v1/realtime", [], kind="websocket") == [
        {"type": "websocket.close", "code": 1008}
    ]
    assert inner.seen == []


def test_lifespan_passes(guarded: tuple[ApiKeyMiddleware, _Inner]) -> None:
    app, inner = guarded
    _call(app, "", [], kind="lifespan")
    assert inner.seen == ["lifespan"]


@pytest.mark.parametrize("value", [None, "", "  "])
def test_refuses_to_start_without_a_key(monkeypatch: pytest.MonkeyPatch, value: str | None) -> None:
    if value is None:
        monkeypatch.delenv("VLLM_API_KEY", raising=False)
    else:
        monkeypatch.setenv("VLLM_API_KEY", value)
    with pytest.raises(RuntimeError, match="VLLM_API_KEY is empty"):
        ApiKeyMiddleware(_Inner())


def test_shipped_source_is_the_tested_module() -> None:
    assert gptoss_api_key.__file__ is not None
    with open(gptoss_api_key.__file__, encoding="utf-8") as f:
        assert middleware_source() == f.read()
    module, name = MIDDLEWARE.rsplit(".", 1)
    assert module == gptoss_api_key.__name__.rsplit(".", 1)[1]
    assert getattr(gptoss_api_key, name) is ApiKeyMiddleware


def _children(extra: dict[str, Any]) -> list[dict[str, Any]]:
    spec = GptOssDeploymentSpec.model_validate({"model": {"name": "gpt-oss-20b"}, **extra})
    return render_children("m", "ns", spec)


def _pod(children: list[dict[str, Any]]) -> dict[str, Any]:
    (d,) = [c for c in children if c["kind"] == "Deployment"]
    return dict(d["spec"]["template"]["spec"])


def _env(pod: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in pod["containers"][0]["env"]}


KEYED = {"api": {"apiKeySecretRef": {"name": "llm-key", "key": "token"}}}


@pytest.mark.parametrize(("monitor", "paths"), [(False, "/health"), (True, "/health,/metrics")])
def test_middleware_wiring(monitor: bool, paths: str) -> None:
    children = _children({**KEYED, "podMonitor": {"enabled": monitor}})
    pod = _pod(children)
    (cm,) = [c for c in children if c["kind"] == "ConfigMap"]
    assert cm["data"] == {"gptoss_api_key.py": middleware_source()}
    (container,) = pod["containers"]
    args = container["args"]
    assert args[args.index("--middleware") + 1] == "gptoss_api_key.ApiKeyMiddleware"
    env = _env(pod)
    assert env["GPTOSS_OPEN_PATHS"] == paths
    assert env["VLLM_API_KEY"] == {"secretKeyRef": {"name": "llm-key", "key": "token"}}
    mount = {m["name"]: m for m in container["volumeMounts"]}["api-key-middleware"]
    assert mount == {
        "name": "api-key-middleware",
        "mountPath": env["PYTHONPATH"],
        "readOnly": True,
    }
    volume = {v["name"]: v for v in pod["volumes"]}["api-key-middleware"]
    assert volume["configMap"]["name"] == cm["metadata"]["name"]


def test_no_key_no_middleware() -> None:
    children = _children({})
    pod = _pod(children)
    assert [c for c in children if c["kind"] == "ConfigMap"] == []
    assert "--middleware" not in pod["containers"][0]["args"]
    assert not {"PYTHONPATH", "GPTOSS_OPEN_PATHS", "VLLM_API_KEY"} & set(_env(pod))


def test_default_pod_runs_as_the_image_user() -> None:
    pod = _pod(_children({}))
    assert pod["securityContext"] == {"seccompProfile": {"type": "RuntimeDefault"}}
    assert "HOME" not in _env(pod)


def test_non_root_user_for_restricted_namespaces() -> None:
    pod = _pod(_children({"securityContext": {"runAsUser": 1000, "runAsGroup": 2000}}))
    assert pod["securityContext"] == {
        "runAsUser": 1000,
        "runAsGroup": 2000,
        "runAsNonRoot": True,
        "fsGroup": 2000,
        "fsGroupChangePolicy": "OnRootMismatch",
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    assert _env(pod)["HOME"] == "/tmp"


def test_user_home_and_explicit_fields_win() -> None:
    pod = _pod(
        _children(
            {
                "securityContext": {"runAsUser": 1000, "runAsNonRoot": False, "fsGroup": 3000},
                "engine": {"extraEnv": [{"name": "HOME", "value": "/home/vllm"}]},
            }
        )
    )
    assert pod["securityContext"]["runAsNonRoot"] is False
    assert pod["securityContext"]["fsGroup"] == 3000
    assert "runAsGroup" not in pod["securityContext"]
    assert _env(pod)["HOME"] == "/home/vllm"


def _ingress(extra: dict[str, Any]) -> list[dict[str, Any]]:
    (np,) = [c for c in _children(extra) if c["kind"] == "NetworkPolicy"]
    return list(np["spec"]["ingress"])


def test_network_policy_default_admits_this_namespace_only() -> None:
    assert _ingress({"networkPolicy": {"enabled": True}}) == [
        {
            "from": [{"podSelector": {"matchLabels": {}}}],
            "ports": [{"protocol": "TCP", "port": 8000}],
        }
    ]


def test_network_policy_admits_the_monitoring_namespace_with_a_pod_monitor() -> None:
    ingress = _ingress(
        {
            "networkPolicy": {"enabled": True, "metricsPodSelector": {"app": "prometheus"}},
            "podMonitor": {"enabled": True},
        }
    )
    assert ingress[1] == {
        "from": [
            {
                "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}},
                "podSelector": {"matchLabels": {"app": "prometheus"}},
            }
        ],
        "ports": [{"protocol": "TCP", "port": 8000}],
    }


def test_pod_template_rolls_when_the_middleware_changes(monkeypatch: pytest.MonkeyPatch) -> None:
    from gptoss_operator.render import auth

    hashes = set()
    for source in ("one", "two"):
        monkeypatch.setattr(auth, "middleware_source", lambda s=source: s)
        (d,) = [c for c in _children(KEYED) if c["kind"] == "Deployment"]
        hashes.add(d["spec"]["template"]["metadata"]["annotations"]["gptoss.dev/spec-hash"])
    assert len(hashes) == 2
