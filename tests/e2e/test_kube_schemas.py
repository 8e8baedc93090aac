"""The pass-through schemas in the CRD (affinity, tolerations) are the pinned apiserver's own.

operator/gptoss_operator/api/kube_schemas.json is trimmed from the Kubernetes OpenAPI document
by tools/kube/schemagen.py; this compares it with what the test bed's apiserver serves.
"""

from __future__ import annotations

import json

import pytest

from gptoss_operator.api.kube_types import schemas
from support.testbed import Testbed
from support.tools import load_tool

pytestmark = pytest.mark.testbed


def test_kube_schemas_match_the_apiserver(testbed: Testbed) -> None:
    served = json.loads(testbed.kubectl("get", "--raw", "/openapi/v3/api/v1").stdout)
    gen = load_tool("kube/schemagen.py")
    expected = gen.trim(served, gen.k8s_version())
    assert schemas() == expected, "kube_schemas.json drifted from the apiserver: make kube-schemas"
    version = json.loads(testbed.kubectl("version", "-o", "json").stdout)["serverVersion"]
    assert version["gitVersion"] == schemas()["kubernetesVersion"]
