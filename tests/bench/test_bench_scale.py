"""Benchmark: the operator at N = 40, 200 and 1,000 GptOssDeployments against the floor, a
plain client doing the same writes, in the same run (`make bench`; BENCH_SIZES=40,200 to pick).

Three runs per N, each in a fresh namespace, one after another:
- floor: the resources exist, no operator runs; a plain client under its own identity applies
  every child and patches one status per resource, one request after another.
- burst: the resources exist before the operator starts (a restart, or an install on a cluster
  that has them), so the client's own speed drops out; the clock starts with the operator.
- stream: the operator runs; a plain client creates the resources one after another.
Every write is counted per user from the audit log (across its rotation). Times come from
watches (support/bench.py). Waits are sized from the floor's own times.

Then churn, at the largest N: one operator process sees N resources created (one request),
Ready, and their namespace deleted, CHURN_CYCLES times (5); its RSS after each cycle shows
whether memory comes back or grows with what it has seen.

It asserts only what holds on any machine: everything converged, exactly N of each child, at
most 5 writes per resource from creation to Ready, no write while idle. The tables and the plot
go to dist/bench/; the figures in docs/benchmarks.md come from one such run.
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import kubernetes
import pytest

from gptoss_operator import credentials
from gptoss_operator.api import GROUP, PLURAL, VERSION, GptOssDeploymentSpec
from gptoss_operator.controller import PROGRESS_STATUS_DELAY
from gptoss_operator.kube import Kube
from gptoss_operator.metrics import PREFIX
from gptoss_operator.reconcile import owner_reference
from gptoss_operator.render import render_children
from gptoss_operator.watchdog import TRIM_SECONDS
from support.bench import (
    FLOOR_USER,
    Stopwatch,
    drop_namespace,
    floor_kubeconfig,
    gpu_nodes,
    percentile,
    plot,
    process_stats,
    table,
)
from support.gptoss import manifest
from support.operator import OperatorProcess
from support.testbed import REPO, Testbed, wait_until

pytestmark = pytest.mark.testbed
SIZES = [int(n) for n in os.environ.get("BENCH_SIZES", "40,200,1000").split(",")]
CHURN_CYCLES = int(os.environ.get("CHURN_CYCLES", "5"))
OPERATOR_USER = "gptoss-operator"
IDLE_SECONDS = 30.0
OUT = REPO / "dist" / "bench"
# What one resource renders to (manifest()'s spec): its children, by kind.
CHILDREN = Counter(
    c["kind"]
    for c in render_children(
        "x",
        "ns",
        GptOssDeploymentSpec.model_validate(manifest("x")["spec"]),
        {"apiVersion": "a", "kind": "k", "name": "x", "uid": "u", "controller": True},
    )
)


@pytest.fixture(scope="module")
def nodes(testbed: Testbed) -> Iterator[None]:
    with gpu_nodes(testbed, max(SIZES) // 8 + 1):
        yield


def _writes(testbed: Testbed, mark: int, user: str, namespace: str) -> tuple[int, int]:
    """(writes, server-side dry-runs) of `user` in `namespace` since `mark`."""
    writes = len(testbed.audit_writes(since=mark, user=user, namespace=namespace))
    dry_runs = len(testbed.audit_dry_runs(since=mark, user=user, namespace=namespace))
    return writes, dry_runs


def _namespace(testbed: Testbed, mode: str, n: int) -> str:
    name = f"bench-{mode}-{n}-{os.getpid() % 10000}"
    testbed.kubectl("create", "namespace", name)
    wait_until(
        lambda: testbed.kubectl("-n", name, "get", "sa", "default", check=False).returncode == 0,
        30,
        f"default ServiceAccount in {name}",
    )
    return name


def _create_resources(testbed: Testbed, namespace: str, n: int) -> None:
    """Create N resources in one request (not part of any measured time)."""
    items = [{**manifest(f"r{i:04d}"), "metadata": {"name": f"r{i:04d}"}} for i in range(n)]
    testbed.kubectl(
        "-n",
        namespace,
        "create",
        "-f",
        "-",
        input=json.dumps({"apiVersion": "v1", "kind": "List", "items": items}),
    )


def _check_children(testbed: Testbed, namespace: str, n: int) -> None:
    for kind, count in CHILDREN.items():
        items = testbed.get("-n", namespace, kind.lower() + "s")["items"]
        assert len(items) == n * count, f"{len(items)} {kind}s in {namespace}, expected {n * count}"


def _row(
    mode: str, n: int, watch: Stopwatch, start: float, writes: tuple[int, int]
) -> dict[str, Any]:
    lags = watch.ready_lags()
    return {
        "mode": mode,
        "n": n,
        "children_s": max(watch.deployments.values()) - start,
        "pods_ready_s": max(watch.pods_ready.values()) - start,
        "lag_p50_s": percentile(lags, 0.5),
        "lag_max_s": max(lags) if lags else float("nan"),
        "writes": writes[0],
        "dry_runs": writes[1],
        "writes_per_resource": writes[0] / n,
    }


def run_floor(testbed: Testbed, operator: OperatorProcess, n: int) -> dict[str, Any]:
    namespace = _namespace(testbed, "floor", n)
    _create_resources(testbed, namespace, n)
    floor_config = str(floor_kubeconfig(testbed))
    kube = Kube(lambda: credentials.from_kubeconfig(floor_config))
    crs = testbed.get("-n", namespace, PLURAL)["items"]
    mark = testbed.audit_mark()
    with Stopwatch(testbed.kubeconfig, namespace) as watch:
        start = time.monotonic()
        for cr in crs:
            spec = GptOssDeploymentSpec.model_validate(cr["spec"])
            for child in render_children(
                cr["metadata"]["name"], namespace, spec, owner_reference(cr)
            ):
                kube.apply(child)
            kube.patch_status(namespace, cr["metadata"]["name"], {"phase": "Ready"})
        writes_done = time.monotonic() - start
        watch.wait("Deployments", watch.deployments, n, 60 + 10 * writes_done)
        watch.wait("Ready pods", watch.pods_ready, n, 600)
        row = _row("floor", n, watch, start, _writes(testbed, mark, FLOOR_USER, namespace))
    row |= {"lag_p50_s": float("nan"), "lag_max_s": float("nan"), "rss_mib": float("nan")}
    row["cpu_s"] = float("nan")
    _check_children(testbed, namespace, n)
    drop_namespace(testbed, namespace, 600)
    return row


def _operator_run(
    testbed: Testbed,
    operator: OperatorProcess,
    n: int,
    mode: str,
    floor: dict[str, Any],
) -> dict[str, Any]:
    namespace = _namespace(testbed, mode, n)
    if mode == "burst":
        operator.stop()
        _create_resources(testbed, namespace, n)
    mark = testbed.audit_mark()
    with Stopwatch(testbed.kubeconfig, namespace) as watch:
        start = time.monotonic()
        if mode == "burst":
            operator.start()
        else:
            api = kubernetes.client.CustomObjectsApi(
                kubernetes.config.new_client_from_config(config_file=str(testbed.kubeconfig))
            )
            for i in range(n):
                body = {**manifest(f"r{i:04d}"), "metadata": {"name": f"r{i:04d}"}}
                api.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, body)
        assert operator.proc is not None
        cpu_start = process_stats(operator.proc.pid)[1] if mode == "stream" else 0.0
        # Waits sized from the floor's own times, with room for a slower operator.
        watch.wait("Deployments", watch.deployments, n, 60 + 5 * floor["children_s"])
        watch.wait("Ready pods", watch.pods_ready, n, 120 + 3 * floor["pods_ready_s"])
        watch.wait("Ready resources", watch.resources_ready, n, 120)
        row = _row(mode, n, watch, start, _writes(testbed, mark, OPERATOR_USER, namespace))
    rss, cpu = process_stats(operator.proc.pid)
    row |= {"rss_mib": rss, "cpu_s": cpu - cpu_start}
    _check_children(testbed, namespace, n)
    # Idle: every resource Ready and the cluster quiet (at N=1000 kube-controller-manager's
    # Deployment statuses trail the pods by seconds, and each is a watch event the operator
    # handles), so the window measures the operator's own idling.
    row["settle_s"] = _settle(testbed, namespace)
    mark = testbed.audit_mark()
    idle_cpu, resyncs = process_stats(operator.proc.pid)[1], _resyncs(operator)
    time.sleep(IDLE_SECONDS)  # the idle window is the measurement
    row["idle_writes"] = len(testbed.audit_writes(since=mark, user=OPERATOR_USER))
    row["idle_cpu_pct"] = 100 * (process_stats(operator.proc.pid)[1] - idle_cpu) / IDLE_SECONDS
    # The watchdog's periodic re-list (every 5 minutes) costs CPU when it falls in the window.
    row["idle_resyncs"] = _resyncs(operator) - resyncs
    drop_namespace(testbed, namespace, 600)
    return row


def _resyncs(operator: OperatorProcess) -> int:
    """The watchdog's re-lists so far, from the operator's /metrics."""
    for line in operator.scrape().splitlines():
        if line.startswith(f"{PREFIX}_watch_resyncs_total "):
            return int(float(line.split()[1]))
    return 0


def _settle(testbed: Testbed, namespace: str) -> float:
    """Wait until nobody writes in `namespace` for longer than a held progress status waits;
    returns the seconds that took."""
    start = time.monotonic()
    window = PROGRESS_STATUS_DELAY + 1

    def quiet() -> bool:
        mark = testbed.audit_mark()
        time.sleep(window)  # the window is what is checked
        return not testbed.audit_writes(since=mark, namespace=namespace)

    wait_until(quiet, 600, f"{window:.0f} s without writes in {namespace}", interval=0)
    return time.monotonic() - start


def _fmt(value: Any, digits: int = 1) -> str:
    if isinstance(value, float):
        return "-" if value != value else f"{value:.{digits}f}"  # NaN: not measured
    return str(value)


def report(results: list[dict[str, Any]]) -> str:
    header = [
        "N",
        "mode",
        "children s",
        "x floor",
        "pods Ready s",
        "Ready lag p50/max s",
        "writes/res",
        "dry-runs",
        "RSS MiB",
        "CPU s",
        "idle writes",
        "idle CPU %",
        "idle resyncs",
    ]
    rows = []
    for r in results:
        floor = next(f for f in results if f["n"] == r["n"] and f["mode"] == "floor")
        rows.append(
            [
                str(r["n"]),
                r["mode"],
                _fmt(r["children_s"]),
                _fmt(r["children_s"] / floor["children_s"], 2),
                _fmt(r["pods_ready_s"]),
                f"{_fmt(r['lag_p50_s'])}/{_fmt(r['lag_max_s'])}",
                _fmt(r["writes_per_resource"], 2),
                str(r["dry_runs"]),
                _fmt(r["rss_mib"], 0),
                _fmt(r["cpu_s"]),
                _fmt(r.get("idle_writes", "-")),
                _fmt(r.get("idle_cpu_pct", float("nan"))),
                _fmt(r.get("idle_resyncs", "-")),
            ]
        )
    return table(header, rows)


@pytest.mark.timeout(7200)
def test_bench_operator_against_the_floor(
    testbed: Testbed, operator: OperatorProcess, nodes: None
) -> None:
    results: list[dict[str, Any]] = []
    for n in SIZES:
        started = time.monotonic()
        operator.stop()  # the floor's namespace sees only the plain client's writes
        floor = run_floor(testbed, operator, n)
        operator.start()
        results += [floor]
        for mode in ("burst", "stream"):
            results.append(_operator_run(testbed, operator, n, mode, floor))
        print(f"\nN={n}: {time.monotonic() - started:.0f} s")
        print(report(results))
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "results.json").write_text(json.dumps(results, indent=1))
    (OUT / "table.txt").write_text(report(results) + "\n")
    plot(results, OUT / "benchmarks.png")
    print(f"\n{report(results)}\nplot: {OUT / 'benchmarks.png'}")
    for r in results:
        if r["mode"] != "floor":
            assert r["writes_per_resource"] <= 5, r
            assert r["idle_writes"] == 0, r


@pytest.mark.timeout(7200)
def test_bench_memory_under_churn(testbed: Testbed, operator: OperatorProcess, nodes: None) -> None:
    """RSS of one operator process at N Ready and after they are gone, cycle after cycle."""
    n = max(SIZES)
    operator.restart()  # a fresh process: what it holds comes from these cycles only
    assert operator.proc is not None
    header = ["cycle", "Ready after s", "RSS at Ready MiB", "RSS after delete MiB", "CPU s"]
    header += ["resyncs"]  # the watchdog's re-lists so far: each lists every watched kind
    rows: list[list[str]] = []
    for cycle in range(CHURN_CYCLES):
        namespace = _namespace(testbed, f"churn{cycle}", n)
        with Stopwatch(testbed.kubeconfig, namespace) as watch:
            start = time.monotonic()
            _create_resources(testbed, namespace, n)
            ready = watch.wait("Ready resources", watch.resources_ready, n, 900) - start
        at_ready, _ = process_stats(operator.proc.pid)
        _check_children(testbed, namespace, n)
        drop_namespace(testbed, namespace, 900)
        time.sleep(TRIM_SECONDS + 5)  # one memory trim after the last event: the measurement
        after, cpu = process_stats(operator.proc.pid)
        rows.append([str(cycle + 1), _fmt(ready), _fmt(at_ready, 0), _fmt(after, 0), _fmt(cpu)])
        rows[-1].append(str(_resyncs(operator)))
        print(f"\nchurn at N={n}\n{table(header, rows)}")
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "churn.txt").write_text(table(header, rows) + "\n")
