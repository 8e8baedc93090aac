"""Benchmark helpers: a watch-based stopwatch per namespace, the floor's own identity, the
operator process's memory and CPU, and the table and plot of the results.

Times come from watch events seen by this process (when a Deployment first appeared, when each
pod and each GptOssDeployment first turned Ready), not from polling lists: at 1,000 resources a
poll of the namespace every half second would itself load the apiserver being measured.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import kubernetes

from gptoss_operator.api import GROUP, PLURAL, VERSION
from gptoss_operator.render import INSTANCE_LABEL
from support.testbed import TESTBED_SCRIPTS, Testbed, wait_until
from support.tools import load_script

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _ready(obj: Any) -> bool:
    conditions = (obj.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


@dataclass
class Stopwatch:
    """First-seen times (time.monotonic) of one namespace's Deployments, Ready pods (by the
    GptOssDeployment they serve) and Ready GptOssDeployments, from three watches."""

    kubeconfig: Path
    namespace: str
    deployments: dict[str, float] = field(default_factory=dict)
    pods_ready: dict[str, float] = field(default_factory=dict)
    resources_ready: dict[str, float] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)

    def __enter__(self) -> Stopwatch:
        api = kubernetes.config.new_client_from_config(config_file=str(self.kubeconfig))
        apps = kubernetes.client.AppsV1Api(api)
        core = kubernetes.client.CoreV1Api(api)
        custom = kubernetes.client.CustomObjectsApi(api)
        ns = self.namespace
        watches = [
            (lambda **kw: apps.list_namespaced_deployment(ns, **kw), self._deployment),
            (lambda **kw: core.list_namespaced_pod(ns, **kw), self._pod),
            (
                lambda **kw: custom.list_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, **kw),
                self._resource,
            ),
        ]
        for lister, record in watches:
            thread = threading.Thread(target=self._follow, args=(lister, record), daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=15)

    def _follow(self, lister: Any, record: Any) -> None:
        version = ""
        while not self._stop.is_set():
            try:
                stream = kubernetes.watch.Watch().stream(
                    lister, resource_version=version, timeout_seconds=5, _request_timeout=30
                )
                for event in stream:
                    obj = event["raw_object"]
                    version = obj["metadata"].get("resourceVersion", version)
                    record(obj, time.monotonic())
                    if self._stop.is_set():
                        break
            except kubernetes.client.exceptions.ApiException as error:
                if error.status == 410:  # expired: list again from now
                    version = ""
                    continue
                raise

    def _deployment(self, obj: dict[str, Any], now: float) -> None:
        self.deployments.setdefault(obj["metadata"]["name"], now)

    def _pod(self, obj: dict[str, Any], now: float) -> None:
        owner = (obj["metadata"].get("labels") or {}).get(INSTANCE_LABEL)
        if owner and _ready(obj) and not obj["metadata"].get("deletionTimestamp"):
            self.pods_ready.setdefault(owner, now)

    def _resource(self, obj: dict[str, Any], now: float) -> None:
        if _ready(obj):
            self.resources_ready.setdefault(obj["metadata"]["name"], now)

    def wait(self, what: str, seen: dict[str, float], count: int, timeout: float) -> float:
        """Wait until `count` objects were seen; returns the last one's time."""
        wait_until(lambda: len(seen) >= count, timeout, f"{count} {what} in {self.namespace}")
        return max(seen.values())

    def ready_lags(self) -> list[float]:
        """Per resource: seconds from its pod Ready to the resource Ready (sorted)."""
        return sorted(
            max(0.0, self.resources_ready[name] - self.pods_ready[name])
            for name in self.resources_ready
            if name in self.pods_ready
        )


def percentile(values: list[float], fraction: float) -> float:
    if not values:
        return float("nan")
    return sorted(values)[min(len(values) - 1, int(fraction * len(values)))]


def process_stats(pid: int) -> tuple[float, float]:
    """(RSS in MiB, CPU seconds user+system) of a running process."""
    rss = 0.0
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1]) / 1024
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime
    return rss, cpu


FLOOR_ACCOUNT = "bench-floor"
FLOOR_USER = f"system:serviceaccount:default:{FLOOR_ACCOUNT}"


def floor_kubeconfig(testbed: Testbed) -> Path:
    """A kubeconfig of the floor's own identity (a ServiceAccount bound to cluster-admin), so
    the audit log tells its writes apart from the admin's, kube-controller-manager's and kwok's
    (they share the test bed's admin user)."""
    testbed.kubectl("-n", "default", "create", "serviceaccount", FLOOR_ACCOUNT, check=False)
    testbed.kubectl(
        "create",
        "clusterrolebinding",
        FLOOR_ACCOUNT,
        "--clusterrole=cluster-admin",
        f"--serviceaccount=default:{FLOOR_ACCOUNT}",
        check=False,
    )
    token = testbed.kubectl(
        "-n", "default", "create", "token", FLOOR_ACCOUNT, "--duration=6h"
    ).stdout.strip()
    text = re.sub(r'token: ".*"', f'token: "{token}"', testbed.kubeconfig.read_text())
    path = testbed.state / "bench-floor.kubeconfig"
    path.write_text(text)
    path.chmod(0o600)
    return path


@contextlib.contextmanager
def gpu_nodes(testbed: Testbed, count: int) -> Iterator[None]:
    """`count` more 8 x H100 nodes, created in one request, removed afterwards."""
    nodes = load_script(TESTBED_SCRIPTS / "nodes.py", "testbed_nodes")
    # A run that was killed left its nodes: start from none.
    testbed.kubectl("delete", "node", "-l", "gptoss.dev/bench", "--timeout=120s", timeout=150)
    items = [nodes.node(f"bench-h100-{i}", "h100") for i in range(count)]
    for item in items:
        item["metadata"]["labels"]["gptoss.dev/bench"] = "true"
    testbed.kubectl(
        "create", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": items})
    )
    testbed.kubectl(
        "wait", "--for=condition=Ready", "node", "-l", "gptoss.dev/bench", "--timeout=120s"
    )
    try:
        yield
    finally:
        testbed.kubectl("delete", "node", "-l", "gptoss.dev/bench", "--wait=false", check=False)


def drop_namespace(testbed: Testbed, namespace: str, timeout: float) -> None:
    """Delete a namespace and wait until it is gone (its pods freed the nodes' GPUs)."""
    testbed.kubectl("delete", "namespace", namespace, "--wait=false", check=False)
    wait_until(
        lambda: testbed.kubectl("get", "namespace", namespace, check=False).returncode != 0,
        timeout,
        f"namespace {namespace} to go",
    )


def table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    line = "  ".join
    out = [line(h.ljust(w) for h, w in zip(header, widths, strict=True))]
    out.append(line("-" * w for w in widths))
    out += [
        line(
            c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True))
        )
        for r in rows
    ]
    return "\n".join(out)


def plot(results: list[dict[str, Any]], path: Path) -> None:
    """Time to children and writes per resource against N, operator (burst, stream) and floor."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    for mode, style in (("floor", "k--o"), ("burst", "C0-o"), ("stream", "C1-s")):
        rows = [r for r in results if r["mode"] == mode]
        sizes = [r["n"] for r in rows]
        left.plot(sizes, [r["children_s"] for r in rows], style, label=mode)
        right.plot(sizes, [r["writes_per_resource"] for r in rows], style, label=mode)
    left.set(xlabel="resources (N)", ylabel="seconds to every child", xscale="log", yscale="log")
    right.set(xlabel="resources (N)", ylabel="writes per resource", xscale="log", ylim=(0, 9))
    for ax in (left, right):
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
    fig.suptitle("gptoss-operator against a plain client (floor), kwok test bed")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
