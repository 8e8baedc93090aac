"""What the watch caches keep: only what the reconcile reads, identical parts stored once."""

from __future__ import annotations

import copy
import json
from typing import Any

from gptoss_operator.cached import LAST_APPLIED, cached_form, share
from gptoss_operator.reconcile import owner_reference
from gptoss_operator.render import SPEC_HASH_ANNOTATION, render_children
from gptoss_operator.validation import parse_spec


def deployment(name: str) -> dict[str, Any]:
    cr = {"metadata": {"name": name, "namespace": "ml", "uid": f"u-{name}"}}
    spec = parse_spec({"model": {"name": "gpt-oss-20b"}, "accelerator": {"profile": "L40S"}})
    children = render_children(name, "ml", spec, owner_reference(cr))
    found = next(c for c in children if c["kind"] == "Deployment")
    # As a watch delivers it: a fresh parse, with what the apiserver adds.
    found = json.loads(json.dumps(found))
    found["metadata"] |= {"uid": f"d-{name}", "resourceVersion": "7", "managedFields": [{}]}
    found["metadata"]["annotations"] = {LAST_APPLIED: "{...}"}
    return found


def test_the_cached_form_equals_the_object_less_what_nobody_reads() -> None:
    live = deployment("a")
    kept = cached_form(copy.deepcopy(live))
    assert "managedFields" not in kept["metadata"]
    assert LAST_APPLIED not in kept["metadata"]["annotations"]
    del live["metadata"]["managedFields"]
    live["metadata"]["annotations"] = {}
    assert kept == live


def test_identical_parts_of_two_resources_are_stored_once() -> None:
    a, b = cached_form(deployment("a")), cached_form(deployment("b"))
    container_a = a["spec"]["template"]["spec"]["containers"][0]
    container_b = b["spec"]["template"]["spec"]["containers"][0]
    assert container_a["startupProbe"] is container_b["startupProbe"]
    assert container_a["securityContext"] is container_b["securityContext"]
    assert a["spec"]["template"] is not b["spec"]["template"]  # names differ inside


def test_pods_and_replicasets_keep_only_what_diagnosis_and_rollback_read() -> None:
    pod = {
        "kind": "Pod",
        "metadata": {
            "name": "p",
            "uid": "u",
            "resourceVersion": "3",
            "labels": {"x": "y"},
            "annotations": {SPEC_HASH_ANNOTATION: "h", "other": "z"},
            "managedFields": [{}],
        },
        "spec": {"containers": [{"name": "vllm"}]},
        "status": {
            "phase": "Running",
            "conditions": [{"type": "Ready", "status": "True", "lastProbeTime": None}],
            "containerStatuses": [{"name": "vllm", "ready": True, "imageID": "sha", "state": {}}],
        },
    }
    assert cached_form(pod) == {
        "kind": "Pod",
        "metadata": {
            "name": "p",
            "uid": "u",
            "resourceVersion": "3",
            "annotations": {SPEC_HASH_ANNOTATION: "h"},
        },
        "status": {
            "phase": "Running",
            "conditions": [{"type": "Ready", "status": "True"}],
            "containerStatuses": [{"name": "vllm", "ready": True, "state": {}}],
        },
    }
    rs = {
        "kind": "ReplicaSet",
        "metadata": {"name": "r"},
        "spec": {"template": {"a": 1}},
        "status": {"replicas": 1},
    }
    assert cached_form(rs) == {
        "kind": "ReplicaSet",
        "metadata": {"name": "r"},
        "spec": {"template": {"a": 1}},
    }


def test_sharing_keeps_values() -> None:
    value = {"a": [1, {"b": "c"}], "d": {"e": None}}
    assert share(copy.deepcopy(value)) == value
    assert share({"x": [1]}) is share({"x": [1]})
    assert share({"x": [1]}) is not share({"x": [2]})
