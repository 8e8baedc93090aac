"""A level-based operator that compares before it writes: idle means zero write requests, and a
restart resumes 50 ready GptOssDeployments without writing anything. Counted from the
apiserver's audit log, not from the operator's own logs."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from gptoss_operator.controller import PROGRESS_STATUS_DELAY
from support.gptoss import apply_all, manifest, ready_count
from support.operator import OperatorProcess
from support.testbed import Testbed, describe_write, wait_until

pytestmark = pytest.mark.testbed
COUNT = 50
OPERATOR_USER = "gptoss-operator"
IDLE_WINDOW_SECONDS = 60
RESUME_WINDOW_SECONDS = 20


@pytest.fixture
def spare_h100_nodes(testbed: Testbed) -> Iterator[None]:
    """Five more 8 x H100 servers: room for 50 single-GPU replicas next to the other tests."""
    with testbed.extra_nodes("idle-h100", "h100", 5):
        yield


def operator_writes(testbed: Testbed, since: int, namespace: str) -> list[str]:
    """The operator's writes in `namespace` (other tests' namespaces may still be winding down)."""
    return [
        describe_write(e)
        for e in testbed.audit_writes(since=since, user=OPERATOR_USER)
        if e["objectRef"].get("namespace") == namespace
    ]


def quiet_for(testbed: Testbed, seconds: float, namespace: str) -> None:
    """Wait until the operator has written nothing for `seconds` (it has caught up)."""

    def quiet() -> bool:
        mark = testbed.audit_mark()
        time.sleep(seconds)
        return not operator_writes(testbed, mark, namespace)

    wait_until(quiet, 120, f"{seconds}s without operator writes", interval=0)


def test_idle_and_restarted_operator_write_nothing(
    testbed: Testbed, operator: OperatorProcess, namespace: str, spare_h100_nodes: None
):
    # Every fifth one also has a model-cache claim and every third an API key (its middleware
    # ConfigMap), so every kind of child is in the count.
    key = {"apiKeySecretRef": {"name": "llm-key", "key": "token"}}
    objects = [
        manifest(
            f"m{i:02d}",
            **({"modelCache": {"size": "40Gi"}} if i % 5 == 0 else {}),
            **({"api": key} if i % 3 == 0 else {}),
        )
        for i in range(COUNT)
    ]
    apply_all(testbed, namespace, objects)
    wait_until(lambda: ready_count(testbed, namespace) == COUNT, 180, f"{COUNT} ready resources")
    quiet_for(testbed, PROGRESS_STATUS_DELAY + 1, namespace)  # a held status lands first

    # The window is the measurement itself: nothing to poll for, so wait it out.
    mark = testbed.audit_mark()
    time.sleep(IDLE_WINDOW_SECONDS)
    idle = operator_writes(testbed, mark, namespace)
    print(
        f"\nwrites by the operator in {IDLE_WINDOW_SECONDS}s idle with {COUNT} ready: {len(idle)}"
    )
    assert idle == []

    mark = testbed.audit_mark()
    operator.restart()
    time.sleep(RESUME_WINDOW_SECONDS)
    resumed = operator_writes(testbed, mark, namespace)
    print(f"writes by the operator in the {RESUME_WINDOW_SECONDS}s after a restart: {len(resumed)}")
    assert resumed == [], resumed
    assert ready_count(testbed, namespace) == COUNT
