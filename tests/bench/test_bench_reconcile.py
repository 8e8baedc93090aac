"""Benchmark: the operator creating N GptOssDeployments' children, against the floor of a plain
client doing the same server-side applies and one status patch each, in the same run.

Prints a table; asserts only what must hold whatever the machine's speed (everything converged,
and the operator's writes stay within a small multiple of the floor's).
Run with `make bench`.
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from collections.abc import Iterator

import pytest

from gptoss_operator.api import GptOssDeploymentSpec
from gptoss_operator.kube import Kube
from gptoss_operator.render import render_children
from support.gptoss import apply_all, manifest, ready_count
from support.operator import OperatorProcess
from support.testbed import Testbed, wait_until

pytestmark = pytest.mark.testbed
COUNT = int(os.environ.get("BENCH_COUNT", "40"))


@pytest.fixture
def spare_nodes(testbed: Testbed) -> Iterator[None]:
    with testbed.extra_nodes("bench-h100", "h100", COUNT // 8 + 1):
        yield


def rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def writes_by(testbed: Testbed, mark: int, user: str, namespace: str) -> Counter[str]:
    return Counter(
        e["objectRef"]["resource"]
        + ("/" + e["objectRef"]["subresource"] if e["objectRef"].get("subresource") else "")
        for e in testbed.audit_writes(since=mark, user=user)
        if e["objectRef"].get("namespace") == namespace
    )


def test_bench_operator_against_plain_client(
    testbed: Testbed, operator: OperatorProcess, namespace: str, spare_nodes: None
) -> None:
    objects = [manifest(f"b{i:03d}") for i in range(COUNT)]

    # The operator: apply N resources, wait for every child Deployment, then every Ready.
    mark = testbed.audit_mark()
    started = time.monotonic()
    apply_all(testbed, namespace, objects)
    wait_until(
        lambda: len(testbed.get("-n", namespace, "deployments")["items"]) == COUNT,
        120,
        "every child Deployment",
    )
    to_children = time.monotonic() - started
    wait_until(lambda: ready_count(testbed, namespace) == COUNT, 180, "every resource Ready")
    to_ready = time.monotonic() - started
    time.sleep(3)  # let the last status writes land before counting
    operator_writes = writes_by(testbed, mark, "gptoss-operator", namespace)
    assert operator.proc is not None
    operator_rss = rss_mib(operator.proc.pid)

    # The floor: the same children applied by a plain client, one status patch per resource.
    floor_ns = f"{namespace}-floor"[:63]
    testbed.kubectl("create", "namespace", floor_ns)
    try:
        kube = Kube.from_environment(str(testbed.kubeconfig))
        for obj in objects:
            testbed.apply(
                floor_ns, json.dumps({**obj, "metadata": {"name": "f" + obj["metadata"]["name"]}})
            )
        crs = testbed.get("-n", floor_ns, "gptossdeployments")["items"]
        operator.stop()  # the floor's namespace must see only the plain client's writes
        mark = testbed.audit_mark()
        started = time.monotonic()
        for cr in crs:
            spec = GptOssDeploymentSpec.model_validate(cr["spec"])
            owner = {
                "apiVersion": cr["apiVersion"],
                "kind": cr["kind"],
                "name": cr["metadata"]["name"],
                "uid": cr["metadata"]["uid"],
                "controller": True,
                "blockOwnerDeletion": True,
            }
            for child in render_children(cr["metadata"]["name"], floor_ns, spec, owner):
                kube.apply(child)
            kube.patch_status(floor_ns, cr["metadata"]["name"], {"phase": "Ready"})
        floor_time = time.monotonic() - started
        floor_writes = writes_by(testbed, mark, "testbed-admin", floor_ns)
    finally:
        operator.start()
        testbed.kubectl("delete", "namespace", floor_ns, "--wait=false", check=False)

    op_total, floor_total = sum(operator_writes.values()), sum(floor_writes.values())
    rows = [
        ("resources", str(COUNT), str(COUNT)),
        ("apply -> all child Deployments (s)", f"{to_children:.1f}", f"{floor_time:.1f}"),
        ("apply -> all Ready (s)", f"{to_ready:.1f}", "-"),
        ("write requests", str(op_total), str(floor_total)),
        *[
            (f"  {kind}", str(operator_writes[kind]), str(floor_writes[kind]))
            for kind in sorted(set(operator_writes) | set(floor_writes))
        ],
        ("writes per resource", f"{op_total / COUNT:.1f}", f"{floor_total / COUNT:.1f}"),
        ("operator RSS after convergence (MiB)", f"{operator_rss:.0f}", "-"),
    ]
    width = max(len(r[0]) for r in rows)
    print(f"\n{'metric':<{width}}  {'operator':>10}  {'floor':>10}")
    for name, ours, floor in rows:
        print(f"{name:<{width}}  {ours:>10}  {floor:>10}")
    # Children writes equal the floor's; the rest is status and Events while pods come up.
    assert op_total <= 4 * floor_total
