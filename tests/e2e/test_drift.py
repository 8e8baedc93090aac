"""Drift, bursts and namespace deletion on the real control plane.

- Every field the operator owns, of every child kind, edited by another client (a JSON patch,
  as `kubectl patch` sends it), is restored; the Service port (an apply the apiserver refuses
  after that edit) included; and the operator then goes quiet.
- A burst of 20 spec edits within a second rolls out at most two pod templates.
- Deleting a namespace that holds resources causes no operator write the apiserver refuses.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from kubernetes import client, config

from gptoss_operator.render import render_children
from gptoss_operator.validation import parse_spec
from support.gptoss import apply, apply_all, child, get, manifest, ready_count, wait_condition
from support.operator import OperatorProcess
from support.testbed import Testbed, describe_write, wait_until

pytestmark = pytest.mark.testbed
OPERATOR_USER = "gptoss-operator"
# List items matched by a key (container, env, volume, port names): renaming one is another
# client adding an item of its own, which server-side apply keeps; out of scope here except the
# Service port, whose apply the apiserver then refuses.
KEY_FIELDS = {"name", "containerPort", "mountPath", "port", "topologyKey", "whenUnsatisfiable"}
SPEC = {
    "podDisruptionBudget": {"enabled": True},
    "networkPolicy": {"enabled": True, "fromPodSelector": {"role": "client"}},
    "podMonitor": {"enabled": True},
}


def leaves(obj: Any, path: tuple[Any, ...] = ()) -> list[tuple[tuple[Any, ...], Any]]:
    if isinstance(obj, dict):
        return [leaf for k, v in obj.items() for leaf in leaves(v, (*path, k))]
    if isinstance(obj, list):
        return [leaf for i, v in enumerate(obj) for leaf in leaves(v, (*path, i))]
    return [(path, obj)]


def pointer(path: tuple[Any, ...]) -> str:
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in path)


def other(value: Any) -> Any:
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1
    return f"{value}-drifted" if isinstance(value, str) else "drifted"


def at(obj: Any, path: tuple[Any, ...]) -> Any:
    for p in path:
        try:
            obj = obj[p]
        except (KeyError, IndexError, TypeError):
            return None
    return obj


def owned_fields(kind: str, rendered: dict[str, Any]) -> list[tuple[tuple[Any, ...], Any]]:
    fields = []
    for path, value in leaves(rendered):
        if path[0] in ("apiVersion", "kind") or path[:2] in (
            ("metadata", "name"),
            ("metadata", "namespace"),
            ("metadata", "ownerReferences"),
        ):
            continue
        if path[-1] in KEY_FIELDS and not (kind == "Service" and path[-1] == "port"):
            continue
        fields.append((path, value))
    return fields


def test_every_owned_field_edited_by_another_client_is_restored(
    testbed: Testbed, operator: OperatorProcess, namespace: str
):
    cr = manifest("drift", **SPEC)
    apply(testbed, namespace, cr)
    wait_condition(testbed, namespace, "drift", "Ready", timeout=60)
    rendered = render_children("drift", namespace, parse_spec(cr["spec"]))
    started = time.monotonic()
    restored = refused = 0
    for desired in rendered:
        kind, name = desired["kind"], desired["metadata"]["name"]
        for path, value in owned_fields(kind, desired):
            patch = [{"op": "replace", "path": pointer(path), "value": other(value)}]
            done = testbed.kubectl(
                "-n",
                namespace,
                "patch",
                kind,
                name,
                "--type=json",
                "-p",
                json.dumps(patch),
                check=False,
            )
            if done.returncode != 0:
                refused += 1  # the apiserver itself refuses that edit (immutable, invalid)
                continue

            def back(
                kind: str = kind, name: str = name, path: Any = path, value: Any = value
            ) -> bool:
                live = child(testbed, namespace, kind, name)
                return live is not None and str(at(live, path)) == str(value)

            wait_until(back, 30, f"{kind} {name} {pointer(path)} restored to {value!r}")
            restored += 1
    took = time.monotonic() - started
    writes = testbed.writes_during(10, OPERATOR_USER, namespace)
    print(
        f"\n{restored} owned fields edited and restored in {took:.1f}s "
        f"({refused} edits the apiserver refused itself); writes in 10 s after: {len(writes)}"
    )
    assert restored > 50
    assert writes == []


def test_a_changed_service_port_is_restored_and_said_in_an_event(
    testbed: Testbed, operator: OperatorProcess, namespace: str
):
    apply(testbed, namespace, manifest("port"))
    wait_condition(testbed, namespace, "port", "Ready", timeout=60)
    patch = [{"op": "replace", "path": "/spec/ports/0/port", "value": 9000}]
    testbed.kubectl("-n", namespace, "patch", "svc", "port", "--type=json", "-p", json.dumps(patch))

    def restored() -> bool:
        svc = child(testbed, namespace, "Service", "port")
        return svc is not None and [p["port"] for p in svc["spec"]["ports"]] == [8000]

    wait_until(restored, 30, "the Service back on port 8000 alone")
    reasons = [
        e["reason"]
        for e in testbed.get(
            "-n", namespace, "events", "--field-selector=involvedObject.name=port"
        )["items"]
    ]
    assert "DriftRestored" in reasons
    cr = wait_condition(testbed, namespace, "port", "Ready", timeout=30)
    assert cr["status"]["reason"] == "Available"


def test_a_burst_of_edits_rolls_out_at_most_two_templates(
    testbed: Testbed, operator: OperatorProcess, namespace: str
):
    apply(testbed, namespace, manifest("burst"))
    wait_condition(testbed, namespace, "burst", "Ready", timeout=60)
    config.load_kube_config(str(testbed.kubeconfig))
    api = client.CustomObjectsApi()
    started = time.monotonic()
    for i in range(20):
        api.patch_namespaced_custom_object(
            "gptoss.dev",
            "v1alpha1",
            namespace,
            "gptossdeployments",
            "burst",
            {"spec": {"engine": {"maxNumSeqs": 100 + i}}},
        )
    took = time.monotonic() - started

    def rolled_out() -> bool:
        cr = get(testbed, namespace, "burst")
        status = cr.get("status", {})
        done = status.get("observedGeneration") == cr["metadata"]["generation"]
        return done and status.get("phase") == "Ready"

    wait_until(rolled_out, 60, "the last edit rolled out")
    deployment = child(testbed, namespace, "Deployment", "burst")
    assert deployment is not None
    assert "119" in " ".join(deployment["spec"]["template"]["spec"]["containers"][0]["args"])
    sets = testbed.get("-n", namespace, "replicasets", "-l", "app.kubernetes.io/instance=burst")
    print(f"\n20 edits in {took:.2f}s; ReplicaSets (templates rolled out): {len(sets['items'])}")
    assert (
        len(sets["items"]) <= 3
    )  # the first template, then at most the in-flight one and the last


def test_deleting_a_namespace_causes_no_refused_writes(
    testbed: Testbed, operator: OperatorProcess, namespace: str
):
    apply_all(testbed, namespace, [manifest(f"ns{i}", **SPEC) for i in range(5)])
    wait_until(lambda: ready_count(testbed, namespace) == 5, 90, "5 ready resources")
    mark = testbed.audit_mark()
    testbed.kubectl("delete", "namespace", namespace, "--wait=true", timeout=180)
    events = testbed.audit_writes(mark, OPERATOR_USER, namespace)
    refused = [describe_write(e) for e in events if e["responseStatus"]["code"] >= 400]
    print(f"\noperator writes while its namespace was deleted: {len(events)}, refused: {refused}")
    assert refused == []
    assert [describe_write(e) for e in events if "status" in describe_write(e)] == []
