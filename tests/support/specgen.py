"""A seeded generator of valid GptOssDeployments, each with the state the test bed should bring
it to. Draws every model, profile and a custom accelerator; every optional child on and off;
API key, engine overrides, rollout settings and the simulated pod behaviours.

Draws the operator's own validation refuses are drawn again, so every spec it returns is one a
user can apply; the apiserver's CEL rules must agree (the test applies them all).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from gptoss_operator.render import render_children, resolve
from gptoss_operator.validation import SpecError, parse_spec

BEHAVIOUR = "sim.gptoss.dev/behavior"
API_VERSION = "gptoss.dev/v1alpha1"
# Profiles the test bed has nodes for, and the node kind (tests/testbed/nodes.py) of each.
NODE_KIND = {"H100-80GB": "h100", "A100-40GB": "a100-40gb", "L40S": "l40s"}
ABSENT_PROFILES = ("H200", "A100-80GB", "L4", "B200")
GPUS_PER_NODE = {"h100": 8, "a100-40gb": 8, "l40s": 4}
SHARED_CLAIM = "shared-weights"  # a ReadWriteMany claim the test creates beforehand
API_KEY_SECRET = "api-key"  # a Secret the test creates beforehand
# Pod behaviour → the Degraded reason diagnosis gives it.
FAILURES = {"crashloop": "CrashLoopBackOff", "oomkilled": "OOMKilled"}
FAILURES["image-pull-error"] = "ImagePullBackOff"


@dataclass
class Drawn:
    """One drawn resource: the object to apply and what the test bed should make of it."""

    body: dict[str, Any]
    # ("Ready", "Available"/"ScaledToZero") or ("Degraded", reason)
    expect: tuple[str, str]
    node_kind: str | None  # where its pods run, when they run
    gpus: int  # GPUs its pods take on `node_kind` nodes

    @property
    def name(self) -> str:
        return str(self.body["metadata"]["name"])

    def children(self, namespace: str) -> set[tuple[str, str]]:
        spec = parse_spec(self.body["spec"])
        return {
            (c["kind"], c["metadata"]["name"]) for c in render_children(self.name, namespace, spec)
        }


def _maybe(rng: random.Random, p: float = 0.5) -> bool:
    return rng.random() < p


def _engine(rng: random.Random) -> dict[str, Any]:
    engine: dict[str, Any] = {}
    if _maybe(rng, 0.3):
        engine["maxModelLen"] = rng.choice([4096, 32768, 65536, 131072])
    if _maybe(rng, 0.2):
        engine["gpuMemoryUtilization"] = rng.choice([0.85, 0.9, 0.95])
    if _maybe(rng, 0.2):
        engine["maxNumSeqs"] = rng.choice([64, 128, 256])
    if _maybe(rng, 0.2):
        engine["maxNumBatchedTokens"] = rng.choice([2048, 8192, 16384])
    if _maybe(rng, 0.2):
        engine["kvCacheDtype"] = rng.choice(["auto", "fp8"])
    if _maybe(rng, 0.1):
        engine["streamInterval"] = rng.choice([1, 5, 20])
    if _maybe(rng, 0.2):
        engine["extraArgs"] = rng.choice([["--enable-prefix-caching"], ["--disable-log-requests"]])
    if _maybe(rng, 0.2):
        # Outside the Basic Multilingual Plane too: the apply body must still decode.
        values = ["search", "ads", "ünïcödé", "rocket 🚀"]
        engine["extraEnv"] = [{"name": "TEAM", "value": rng.choice(values)}]
    return engine


def _download(rng: random.Random, managed: bool) -> dict[str, Any]:
    """spec.modelCache.download: on for an existing claim (off stays the default there), and
    the Job's knobs. The test bed's download pods succeed after about a second (kwok)."""
    download: dict[str, Any] = {} if managed else {"enabled": True}
    if _maybe(rng, 0.3):
        download["endpoint"] = "https://hf-mirror.example.com"
    if _maybe(rng, 0.2):
        download["encodingsUrl"] = "https://mirror.example.com/encodings"
    if _maybe(rng, 0.3):
        download["parts"] = rng.choice([1, 2, 5])
    if _maybe(rng, 0.3):
        download["parallelism"] = rng.choice([1, 4])
    if _maybe(rng, 0.2):
        download |= {"cpu": "2", "memory": "4Gi"}
    if _maybe(rng, 0.2):
        download |= {"deadlineSeconds": 7200, "backoffLimit": rng.choice([0, 6])}
    if _maybe(rng, 0.2):
        download["nodeSelector"] = {"node.kubernetes.io/instance-type": "m7i.8xlarge"}
    if _maybe(rng, 0.2):
        download["tolerations"] = [{"key": "pool", "operator": "Exists"}]
    return download


# Nothing listens there: KEDA (when the autoscaling tests started it) gets no metric, so its
# HPA holds the drawn replicas, which are always within the drawn bounds.
NO_PROMETHEUS = "http://127.0.0.1:9"


def _autoscaling(rng: random.Random, replicas: int) -> dict[str, Any]:
    auto: dict[str, Any] = {
        "enabled": True,
        "minReplicas": rng.choice([1, replicas]),
        "maxReplicas": max(replicas, rng.choice([1, 2, 4])),
        "prometheusAddress": NO_PROMETHEUS,
    }
    if _maybe(rng, 0.3):
        auto["metric"] = rng.choice(["KVCacheUsage", "TimeToFirstToken"])
    if _maybe(rng, 0.3):
        auto["target"] = rng.choice([0.5, 3])
    if _maybe(rng, 0.2):
        auto["scaleDownStabilizationSeconds"] = rng.choice([300, 1800])
    return auto


def _spec(
    rng: random.Random, podmonitor_crd: bool, keda_crd: bool = False
) -> tuple[dict[str, Any], str | None, str]:
    """A spec, the node kind its pods need (None: nowhere on the test bed), its behaviour."""
    model = rng.choice(["gpt-oss-20b", "gpt-oss-120b"])
    spec: dict[str, Any] = {"model": {"name": model}, "replicas": rng.choice([0, 1, 1, 1, 2])}
    roll = rng.random()
    node_kind: str | None
    if roll < 0.15:
        spec["accelerator"] = {
            "custom": {
                "resourceName": "nvidia.com/gpu",
                "nodeSelector": {"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"},
                "gpuMemoryGiB": 80,
                "gpusPerNode": 8,
            }
        }
        node_kind = "h100"
    elif roll < 0.3:
        spec["accelerator"] = {"profile": rng.choice(ABSENT_PROFILES)}
        node_kind = None
    else:
        profile = rng.choice(sorted(NODE_KIND))
        spec["accelerator"] = {"profile": profile}
        node_kind = NODE_KIND[profile]
    if _maybe(rng, 0.25):
        spec["tensorParallelSize"] = rng.choice([1, 2, 4, 8])
    if engine := _engine(rng):
        spec["engine"] = engine
    api: dict[str, Any] = {}
    if _maybe(rng, 0.3):
        api["apiKeySecretRef"] = {"name": API_KEY_SECRET, "key": "key"}
    if _maybe(rng, 0.2):
        api["servedModelName"] = rng.choice(["chat", "gpt-oss", "team/model"])
    if _maybe(rng, 0.1):
        api["toolCalling"] = False
    if api:
        spec["api"] = api
    cache = rng.random()
    if cache < 0.2:
        spec["modelCache"] = {"size": rng.choice(["20Gi", "100Gi"])}
        if _maybe(rng, 0.3):
            spec["modelCache"]["offline"] = True  # the download Job fills the claim
    elif cache < 0.3:
        spec["modelCache"] = {"existingClaimName": SHARED_CLAIM, "offline": _maybe(rng)}
    if "modelCache" in spec and _maybe(rng, 0.4):
        spec["modelCache"]["download"] = _download(rng, "size" in spec["modelCache"])
    if _maybe(rng, 0.2):
        spec["rollout"] = rng.choice(
            [
                {"strategy": "Recreate"},
                {"maxSurge": 1, "maxUnavailable": 0},
                {"progressDeadlineSeconds": 1800, "autoRollback": False},
            ]
        )
    if _maybe(rng, 0.2):
        spec["shutdown"] = {"preStopSleepSeconds": 5, "drainSeconds": 30}
    if _maybe(rng, 0.2):
        spec["podDisruptionBudget"] = {"enabled": False}
    if _maybe(rng, 0.3):
        spec["networkPolicy"] = rng.choice(
            [
                {"enabled": True},
                {"enabled": True, "fromNamespaceSelector": {"team": "search"}},
                {"enabled": True, "fromPodSelector": {"role": "client"}},
            ]
        )
    if podmonitor_crd and _maybe(rng, 0.2):
        spec["podMonitor"] = {"enabled": True, "labels": {"release": "prometheus"}}
    if keda_crd and spec["replicas"] >= 1 and _maybe(rng, 0.2):
        spec["autoscaling"] = _autoscaling(rng, spec["replicas"])
    if _maybe(rng, 0.2):
        spec["service"] = rng.choice(
            [{"port": 80}, {"type": "NodePort"}, {"annotations": {"team": "search"}}]
        )
    if _maybe(rng, 0.2):
        spec["resources"] = {"cpu": "6", "memory": "48Gi"}
    if _maybe(rng, 0.2):
        spec["scheduling"] = {
            "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
        }
    if _maybe(rng, 0.1):
        spec["podAnnotations"] = {"team": "search"}
    behaviour = rng.choices(["ready", *sorted(FAILURES)], weights=[7, 1, 1, 1])[0]
    if behaviour != "ready":
        spec["podLabels"] = {BEHAVIOUR: behaviour}
    return spec, node_kind, behaviour


def draw(
    rng: random.Random, name: str, podmonitor_crd: bool = False, keda_crd: bool = False
) -> Drawn:
    """One valid GptOssDeployment named `name`, with its expected state."""
    while True:
        spec, node_kind, behaviour = _spec(rng, podmonitor_crd, keda_crd)
        try:
            parsed = parse_spec(spec)
            render_children(name, "ns", parsed)
        except SpecError:
            continue  # an invalid combination (e.g. 120b with TP 1 on L40S): draw again
        break
    replicas = parsed.replicas
    if replicas == 0:
        expect = ("Ready", "ScaledToZero")
    elif node_kind is None:
        expect = ("Degraded", "Unschedulable")
    elif behaviour != "ready":
        expect = ("Degraded", FAILURES[behaviour])
    else:
        expect = ("Ready", "Available")
    body = {"apiVersion": API_VERSION, "kind": "GptOssDeployment", "metadata": {"name": name}}
    gpus = resolve(parsed).gpus_per_replica * replicas if node_kind else 0
    return Drawn(body | {"spec": spec}, expect, node_kind, gpus)


def everything_on(name: str, podmonitor_crd: bool, keda_crd: bool = False) -> Drawn:
    """One spec with every option set."""
    spec: dict[str, Any] = {
        "model": {"name": "gpt-oss-120b", "repository": "openai/gpt-oss-120b", "revision": "main"},
        "replicas": 2,
        "accelerator": {"profile": "H100-80GB", "gpusPerNode": 8},
        "tensorParallelSize": 2,
        "engine": {
            "maxModelLen": 65536,
            "gpuMemoryUtilization": 0.9,
            "maxNumSeqs": 128,
            "maxNumBatchedTokens": 8192,
            "kvCacheDtype": "fp8",
            "streamInterval": 5,
            "extraArgs": ["--enable-prefix-caching"],
            "extraEnv": [{"name": "TEAM", "value": "search 🚀"}],
        },
        "api": {
            "servedModelName": "gpt-oss-120b",
            "toolCalling": True,
            "apiKeySecretRef": {"name": API_KEY_SECRET, "key": "key"},
        },
        "modelCache": {
            "size": "200Gi",
            "accessModes": ["ReadWriteMany"],
            "hfTokenSecretRef": {"name": API_KEY_SECRET, "key": "key"},
            "offline": True,
            "download": {
                "enabled": True,
                "endpoint": "https://hf-mirror.example.com",
                "encodingsUrl": "https://mirror.example.com/encodings",
                "parts": 5,
                "parallelism": 2,
                "cpu": "2",
                "memory": "4Gi",
                "deadlineSeconds": 7200,
                "backoffLimit": 6,
                "nodeSelector": {"node.kubernetes.io/instance-type": "m7i.8xlarge"},
                "tolerations": [{"key": "pool", "operator": "Exists"}],
            },
        },
        "image": "vllm/vllm-openai:v0.33.0",
        "imagePullPolicy": "IfNotPresent",
        "resources": {"cpu": "16", "memory": "128Gi"},
        "scheduling": {
            "nodeSelector": {"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"},
            "tolerations": [
                {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
            ],
        },
        "podLabels": {"team": "search"},
        "podAnnotations": {"team": "search", "owner": "équipe 🚀"},
        "service": {"type": "ClusterIP", "port": 8000, "annotations": {"team": "search"}},
        "probes": {"startupBudgetSeconds": 1800},
        "rollout": {
            "strategy": "RollingUpdate",
            "maxSurge": 0,
            "maxUnavailable": 1,
            "progressDeadlineSeconds": 3600,
            "autoRollback": True,
            "revisionHistoryLimit": 5,
        },
        "shutdown": {
            "preStopSleepSeconds": 10,
            "drainSeconds": 60,
            "terminationGracePeriodSeconds": 120,
        },
        "podDisruptionBudget": {"enabled": True, "maxUnavailable": 1},
        "networkPolicy": {
            "enabled": True,
            "fromNamespaceSelector": {"team": "search"},
            "fromPodSelector": {"role": "client"},
        },
        "podMonitor": {"enabled": podmonitor_crd, "interval": "15s", "labels": {"release": "p"}},
        "autoscaling": {
            "enabled": keda_crd,
            "minReplicas": 1,
            "maxReplicas": 2,
            "metric": "RequestsWaiting",
            "target": 4,
            "query": 'sum(vllm:num_requests_waiting{namespace="x"})',
            "activationTarget": 0,
            "idleSeconds": 600,
            "scaleDownStabilizationSeconds": 1800,
            "scaleUpStabilizationSeconds": 30,
            "pollingIntervalSeconds": 15,
            "prometheusAddress": NO_PROMETHEUS,
            "authenticationRef": "prometheus-auth",
        },
    }
    parse_spec(spec)
    body = {"apiVersion": API_VERSION, "kind": "GptOssDeployment", "metadata": {"name": name}}
    return Drawn(body | {"spec": spec}, ("Ready", "Available"), "h100", 4)
