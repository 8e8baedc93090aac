"""The pass-through Kubernetes types: the CRD embeds their real schema and Python checks it."""

from __future__ import annotations

from typing import Any

import pytest

from gptoss_operator.api.kube_types import check, schema, schemas
from gptoss_operator.crd import crd

GOOD_AFFINITY = {
    "nodeAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [
                {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]}
            ]
        }
    },
    "podAntiAffinity": {
        "preferredDuringSchedulingIgnoredDuringExecution": [
            {"weight": 10, "podAffinityTerm": {"topologyKey": "kubernetes.io/hostname"}}
        ]
    },
}


def test_good_objects_pass() -> None:
    check(GOOD_AFFINITY, schema("Affinity"))
    check({"key": "k", "operator": "Exists", "effect": "NoSchedule"}, schema("Toleration"))


@pytest.mark.parametrize(
    ("name", "value", "where"),
    [
        ("Affinity", {"nodeAffinity": "x"}, "nodeAffinity: expected object"),
        ("Affinity", {"nodeAffinity": {"bogus": 1}}, "nodeAffinity.bogus: unknown field"),
        (
            "Affinity",
            {
                "podAntiAffinity": {
                    "preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 1}]
                }
            },
            "preferredDuringSchedulingIgnoredDuringExecution[0]: podAffinityTerm is required",
        ),
        ("Toleration", {"tolerationSeconds": "x"}, "tolerationSeconds: expected integer"),
        ("Toleration", {"tolerationSeconds": True}, "tolerationSeconds: expected integer"),
        ("Toleration", {"operator": "Near"}, "operator: must be one of"),
    ],
)
def test_bad_objects_name_the_sub_field(name: str, value: Any, where: str) -> None:
    with pytest.raises(ValueError, match=r".+") as info:
        check(value, schema(name))
    assert where in str(info.value)


def test_crd_embeds_the_kubernetes_schemas() -> None:
    spec = crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    scheduling = spec["properties"]["scheduling"]["properties"]
    assert "nodeAffinity" in scheduling["affinity"]["properties"]
    assert "tolerationSeconds" in scheduling["tolerations"]["items"]["properties"]
    assert "x-kubernetes-preserve-unknown-fields" not in scheduling["affinity"]
    assert schemas()["kubernetesVersion"].startswith("v1.")
