"""The watchdog's resync lists what the caches hold, as the real apiserver serves it.

It asks for metadata alone (PartialObjectMetadataList), in pages: the uids and versions it
compares must be those of a full list, for our own kind and every child kind, with the
operator's own RBAC.
"""

from __future__ import annotations

import json
from urllib.parse import urlencode

import pytest

from gptoss_operator import credentials
from gptoss_operator.handlers import OURS_SELECTOR
from gptoss_operator.kube import CUSTOM_RESOURCE, Kube, Resource
from gptoss_operator.render import WATCHED_KINDS
from gptoss_operator.watchdog import Watchdog
from support.gptoss import apply, manifest, ready_count
from support.operator import OperatorProcess
from support.testbed import Testbed, wait_until

pytestmark = pytest.mark.testbed


def _full_list(testbed: Testbed, path: str, selector: str, version: int) -> dict[str, int]:
    """uid -> resourceVersion of a full list at exactly `version` (the same snapshot: the
    Deployments' statuses change in between)."""
    query = {"resourceVersion": str(version), "resourceVersionMatch": "Exact"}
    query |= {"labelSelector": selector} if selector else {}
    items = json.loads(testbed.kubectl("get", "--raw", f"{path}?{urlencode(query)}").stdout)
    return {i["metadata"]["uid"]: int(i["metadata"]["resourceVersion"]) for i in items["items"]}


def test_a_resync_lists_the_uids_and_versions_of_a_full_list(
    testbed: Testbed, operator: OperatorProcess, namespace: str
) -> None:
    for name in ("a", "b", "c"):
        apply(testbed, namespace, manifest(name))
    wait_until(lambda: ready_count(testbed, namespace) == 3, 90, "3 Ready resources")
    kube = Kube(lambda: credentials.from_kubeconfig(str(testbed.operator_kubeconfig)))
    watchdog = Watchdog(None, kube, OURS_SELECTOR, (namespace,))  # type: ignore[arg-type]
    listed = watchdog._list()

    assert listed is not None
    kinds = {"gptoss_by_key": (CUSTOM_RESOURCE, "")}
    kinds |= {
        k.index: (Resource(k.group, k.version, k.plural), OURS_SELECTOR) for k in WATCHED_KINDS
    }
    assert {"gptoss_by_key", "deployments_by_owner", "pods_by_owner"} <= set(listed)
    for index, (uids, version) in listed.items():
        resource, selector = kinds[index]
        full = _full_list(testbed, resource.collection(namespace), selector, version)
        assert uids == full, index
    assert len(listed["gptoss_by_key"][0]) == 3
    assert len(listed["pods_by_owner"][0]) >= 3
