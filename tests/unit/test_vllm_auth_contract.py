"""The API key guards every route of vLLM 0.33's real API server, as the operator deploys it.

Builds vLLM's own FastAPI application (`build_app`, the router set of a generate model, no
engine) from the rendered command line, environment and ConfigMap, then sends each route a
request without the key, with a wrong key and with the key. A spy middleware placed right behind
the operator's records what got through, so "passed" means the request reached vLLM, not merely
"was not refused". Every route vLLM registers must be classified in ROUTES: a route added by a
future vLLM fails `test_every_route_is_classified` until someone decides whether it needs the key.
"""

from __future__ import annotations

import importlib.metadata
import os
import re
import sys
from pathlib import Path
from typing import Any

import pytest

from gptoss_operator.api import GptOssDeploymentSpec
from gptoss_operator.catalog import VLLM_VERSION
from gptoss_operator.render import render_children

pytestmark = pytest.mark.contract

KEY = "sk-contract-7f3c9a"
SPY_MODULE = "gptoss_contract_spy"
SPY = """
SEEN = []


class Spy:
    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            SEEN.append((scope["method"], scope["path"]))
        await self.app(scope, receive, send)
"""

OPEN = "open"  # no key needed: the probes' path
METRICS = "metrics"  # no key needed only while a PodMonitor scrapes it
GUARDED = "guarded"
# Every (method, path) vLLM 0.33 registers for a generate model, and why it needs the key.
# A Mount is listed with a trailing slash: it serves everything below its path.
ROUTES: dict[tuple[str, str], str] = {
    ("GET", "/health"): OPEN,  # startup, readiness and liveness probes
    ("GET", "/metrics"): METRICS,  # Prometheus exposition
    ("GET", "/metrics/"): GUARDED,  # the Prometheus ASGI app mounted under /metrics
    ("GET", "/openapi.json"): GUARDED,  # the API's map: no reason to show it to strangers
    ("HEAD", "/openapi.json"): GUARDED,
    ("GET", "/docs"): GUARDED,
    ("HEAD", "/docs"): GUARDED,
    ("GET", "/docs/oauth2-redirect"): GUARDED,
    ("HEAD", "/docs/oauth2-redirect"): GUARDED,
    ("GET", "/redoc"): GUARDED,
    ("HEAD", "/redoc"): GUARDED,
    ("GET", "/load"): GUARDED,  # server load: reveals traffic
    ("GET", "/version"): GUARDED,  # fingerprints the server for known CVEs
    ("GET", "/kv_event_sources"): GUARDED,
    ("POST", "/tokenize"): GUARDED,  # runs the tokenizer: CPU for strangers
    ("POST", "/detokenize"): GUARDED,
    ("GET", "/v1/models"): GUARDED,
    ("POST", "/v1/systemone"): GUARDED,
    ("POST", "/v1/decisions"): GUARDED,
    ("GET", "/ping"): GUARDED,  # SageMaker health: the probes use /health
    ("POST", "/ping"): GUARDED,
    ("POST", "/invocations"): GUARDED,  # SageMaker: runs chat completions (vLLM leaves it open)
    ("POST", "/v1/chat/completions"): GUARDED,
    ("POST", "/v1/chat/completions/batch"): GUARDED,
    ("POST", "/v1/responses"): GUARDED,
    ("GET", "/v1/responses/{response_id}"): GUARDED,
    ("POST", "/v1/responses/{response_id}/cancel"): GUARDED,
    ("POST", "/v1/completions"): GUARDED,
    ("POST", "/v1/messages"): GUARDED,
    ("POST", "/v1/messages/count_tokens"): GUARDED,
    ("POST", "/generative_scoring"): GUARDED,
    ("POST", "/scale_elastic_ep"): GUARDED,  # admin: rescales the engine
    ("POST", "/is_scaling_elastic_ep"): GUARDED,
    ("POST", "/v1/chat/completions/render"): GUARDED,
    ("POST", "/v1/messages/render"): GUARDED,
    ("POST", "/v1/completions/render"): GUARDED,
    ("POST", "/v1/responses/render"): GUARDED,
    ("POST", "/v1/chat/completions/derender"): GUARDED,
    ("POST", "/v1/completions/derender"): GUARDED,
    ("POST", "/inference/v1/generate"): GUARDED,
    ("POST", "/inference/v1/abort_requests"): GUARDED,
}


def _spec(pod_monitor: bool) -> GptOssDeploymentSpec:
    return GptOssDeploymentSpec.model_validate(
        {
            "model": {"name": "gpt-oss-20b"},
            "api": {"apiKeySecretRef": {"name": "llm-key", "key": "token"}},
            "podMonitor": {"enabled": pod_monitor},
        }
    )


class Server:
    """vLLM's application as one rendered pod would run it, plus what reached vLLM."""

    def __init__(self, app: Any, spy: Any) -> None:
        from starlette.testclient import TestClient

        self.app = app
        self.spy = spy
        # No `with`: the lifespan would start an engine. Handlers without one answer 500.
        self.client = TestClient(app, raise_server_exceptions=False)

    def request(self, method: str, path: str, key: str | None) -> tuple[int, bool]:
        """(status, whether the request reached vLLM behind the operator's middleware)."""
        self.spy.SEEN.clear()
        headers = {"Authorization": f"Bearer {key}"} if key is not None else {}
        url = re.sub(r"\{[^}]+\}", "x", path)
        response = self.client.request(method, url, headers=headers, json={})
        return response.status_code, (method, url) in self.spy.SEEN


def _routes(app: Any) -> set[tuple[str, str]]:
    from starlette.routing import Mount

    found = set()
    for route in app.routes:
        if isinstance(route, Mount):
            found.add(("GET", route.path + "/"))
        else:
            found |= {(m, route.path) for m in route.methods or ()}
    return found


def _build(
    spec: GptOssDeploymentSpec,
    tmp: Path,
    monkeypatch: pytest.MonkeyPatch,
    extra_env: dict[str, str],
) -> Server:
    from vllm.entrypoints.cli.serve import ServeSubcommand
    from vllm.entrypoints.launchers.app import build_app
    from vllm.utils.argparse_utils import FlexibleArgumentParser

    children = render_children("m", "ns", spec)
    (config_map,) = [c for c in children if c["kind"] == "ConfigMap"]
    (deployment,) = [c for c in children if c["kind"] == "Deployment"]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    # The kubelet's part: mount the ConfigMap, resolve the secretKeyRef, set the environment.
    for file, text in config_map["data"].items():
        (tmp / file).write_text(text)
    (tmp / f"{SPY_MODULE}.py").write_text(SPY)
    for env in container["env"]:
        if "valueFrom" in env:
            assert env["valueFrom"]["secretKeyRef"] == {"name": "llm-key", "key": "token"}
        monkeypatch.setenv(env["name"], KEY if "valueFrom" in env else env["value"])
    for name, value in extra_env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.syspath_prepend(str(tmp))  # stands for PYTHONPATH=<the ConfigMap's mount>
    for module in ("gptoss_api_key", SPY_MODULE):
        sys.modules.pop(module, None)

    parser = FlexibleArgumentParser(prog="vllm")
    ServeSubcommand().subparser_init(parser.add_subparsers(dest="subparser", required=False))
    args = parser.parse_args(["serve", *container["args"]])
    assert args.middleware == ["gptoss_api_key.ApiKeyMiddleware"]
    assert not args.api_key, "the key must not be on the command line"
    # vLLM adds --middleware classes in order, each outside the previous: the spy goes first so
    # it ends up right behind the operator's middleware.
    args.middleware = [f"{SPY_MODULE}.Spy", *args.middleware]
    app = build_app(args, supported_tasks=("generate",))
    outermost = [m.cls.__name__ for m in app.user_middleware[:2]]
    assert outermost == ["ApiKeyMiddleware", "Spy"], app.user_middleware
    return Server(app, sys.modules[SPY_MODULE])


@pytest.fixture(scope="module")
def vllm_ready() -> None:
    os.environ["VLLM_TARGET_DEVICE"] = "cpu"  # import vLLM on a machine without GPUs
    try:
        version = importlib.metadata.version("vllm")
        import vllm.entrypoints.launchers.app  # noqa: F401 - slow import, once per module
    except ImportError as exc:  # pragma: no cover - depends on the environment
        pytest.fail(f"vLLM is not installed ({exc}): run `make .venv/.vllm` (the vllm extra)")
    assert version == VLLM_VERSION


@pytest.fixture(params=[False, True], ids=["no-podmonitor", "podmonitor"])
def server(
    request: pytest.FixtureRequest,
    vllm_ready: None,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> tuple[Server, bool]:
    return _build(_spec(request.param), tmp_path, monkeypatch, {}), request.param


def test_every_route_is_classified(server: tuple[Server, bool]) -> None:
    found = _routes(server[0].app)
    assert found - set(ROUTES) == set(), "new vLLM routes: classify them in ROUTES"
    assert set(ROUTES) - found == set(), "routes vLLM no longer registers: drop them from ROUTES"


def test_route_by_route(server: tuple[Server, bool]) -> None:
    srv, monitored = server
    wrong = [f"{KEY}x", KEY[:-1], "", KEY.upper()]
    for (method, path), kind in ROUTES.items():
        is_open = kind == OPEN or (kind == METRICS and monitored)
        status, reached = srv.request(method, path, None)
        if is_open:
            assert reached, f"{method} {path} must work without the key ({status})"
            assert status != 401
            continue
        assert (status, reached) == (401, False), f"{method} {path} without the key"
        for key in wrong:
            assert srv.request(method, path, key) == (401, False), f"{method} {path} key {key!r}"
        status, reached = srv.request(method, path, KEY)
        assert reached, f"{method} {path} with the key did not reach vLLM ({status})"
        assert status != 401


def test_dev_mode_routes_are_guarded_too(
    vllm_ready: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """extraEnv may turn on VLLM_SERVER_DEV_MODE (sleep, reset caches, collective_rpc): the
    middleware guards by default, so those routes need the key without being listed."""
    srv = _build(_spec(False), tmp_path, monkeypatch, {"VLLM_SERVER_DEV_MODE": "1"})
    extra = _routes(srv.app) - set(ROUTES)
    assert extra, "dev mode added no routes: this test no longer tests anything"
    for method, path in sorted(extra):
        assert srv.request(method, path, None) == (401, False), f"{method} {path}"


def test_an_empty_key_stops_the_server_at_start(
    vllm_ready: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A Secret holding an empty value: building the app fails (the SageMaker bootstrap builds
    the middleware stack inside `build_app`), so vLLM exits instead of serving without a key."""
    with pytest.raises(RuntimeError, match="VLLM_API_KEY is empty"):
        _build(_spec(False), tmp_path, monkeypatch, {"VLLM_API_KEY": ""})
