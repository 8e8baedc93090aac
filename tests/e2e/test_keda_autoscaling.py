"""Autoscaling on vLLM's waiting requests, end to end with the real KEDA (built from the Go
module proxy) and the real HPA controller of kube-controller-manager: the operator renders the
ScaledObject, KEDA creates the HPA, the HPA reads the external metric through KEDA's metrics
apiserver (aggregation layer), KEDA's prometheus scaler asks Prometheus the ScaledObject's own
PromQL (a real Prometheus scraping vLLM's metric names, or a stand-in of its query API whose
value changes at once), and the HPA scales the GptOssDeployment through its scale subresource;
the operator then rolls the Deployment to that count.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from gptoss_operator.render.autoscaling import query
from gptoss_operator.validation import parse_spec
from support.gptoss import apply, get, manifest, wait_condition
from support.keda import Keda
from support.operator import OperatorProcess
from support.prometheus import Prometheus
from support.promstub import PromStub
from support.testbed import Testbed, wait_until
from support.vllmstub import VllmMetrics

pytestmark = pytest.mark.testbed
OPERATOR_USER = "gptoss-operator"
WINDOW = 20  # the test's scale-down stabilisation window (the default is 20 minutes)


@pytest.fixture(scope="module")
def keda(testbed: Testbed, gptoss_crd: object) -> Keda:
    running = Keda(testbed)
    running.start()
    return running


@pytest.fixture
def prom() -> Iterator[PromStub]:
    with PromStub() as stub:
        yield stub


def replicas(testbed: Testbed, namespace: str, name: str) -> tuple[int, int, dict[str, object]]:
    cr = get(testbed, namespace, name)
    status = cr.get("status") or {}
    return int(cr["spec"]["replicas"]), int(status.get("readyReplicas") or 0), status


def test_scales_on_waiting_requests_through_the_scale_subresource(
    testbed: Testbed, operator: OperatorProcess, keda: Keda, prom: PromStub, namespace: str
) -> None:
    autoscaling = {
        "enabled": True,
        "minReplicas": 1,
        "maxReplicas": 3,
        "target": 2,
        "scaleDownStabilizationSeconds": WINDOW,
        "pollingIntervalSeconds": 5,
        "prometheusAddress": prom.url,
    }
    body = manifest("auto", accelerator={"profile": "L40S"}, replicas=1, autoscaling=autoscaling)
    waiting = query("auto", namespace, parse_spec(body["spec"]))
    prom.set(waiting, 0)
    with testbed.extra_nodes("autoscale", "l40s", 1):
        apply(testbed, namespace, body)
        wait_until(
            lambda: (
                testbed.kubectl(
                    "-n", namespace, "get", "hpa", "keda-hpa-auto", check=False
                ).returncode
                == 0
            ),
            60,
            "KEDA's HPA for the ScaledObject",
        )
        wait_until(lambda: replicas(testbed, namespace, "auto")[1] == 1, 60, "one ready replica")

        # 5 waiting requests on 1 replica, target 2 per replica: ceil(5 / 2) = 3 replicas.
        prom.set(waiting, 5)
        start = time.monotonic()
        wait_until(lambda: replicas(testbed, namespace, "auto")[0] == 3, 90, "spec.replicas 3")
        up = time.monotonic() - start
        wait_until(lambda: replicas(testbed, namespace, "auto")[1] == 3, 60, "3 ready replicas")
        ready = time.monotonic() - start
        assert prom.asked[waiting] > 0, f"KEDA asked other queries: {dict(prom.asked)}"
        status = wait_until(
            lambda: (
                (s := replicas(testbed, namespace, "auto")[2].get("autoscaler"))
                and (s.get("currentReplicas"), s.get("desiredReplicas")) == (3, 3)
                and s
            ),
            60,
            "status.autoscaler to show the HPA's 3 replicas",
        )
        assert status == {
            "name": "keda-hpa-auto",
            "minReplicas": 1,
            "maxReplicas": 3,
            "currentReplicas": 3,
            "desiredReplicas": 3,
            "lastScaleTime": status["lastScaleTime"],
        }

        # Far more than 3 replicas could serve: the maximum holds. Meanwhile the HPA reads the
        # metric (its status changes) and the operator, which watches it only to report it,
        # writes nothing.
        prom.set(waiting, 100)
        asked = prom.asked[waiting]
        assert testbed.writes_during(20, OPERATOR_USER, namespace) == []
        assert prom.asked[waiting] > asked, "the HPA did not read the metric within 20 s"
        assert replicas(testbed, namespace, "auto")[0] == 3

        # 4 waiting on 3 replicas: ceil(4 / 2) = 2, but only once the window has passed since
        # the HPA last read a value that wanted more (it keeps the highest wish of the window).
        prom.set(waiting, 4)
        start = time.monotonic()
        wait_until(lambda: replicas(testbed, namespace, "auto")[0] == 2, 120, "spec.replicas 2")
        down = time.monotonic() - start
        last_high = max(t for t, q, v in prom.answers if q == waiting and v == 100)
        since_high = time.monotonic() - last_high
        assert since_high >= WINDOW - 1, f"scaled down {since_high:.0f}s after the last high read"
        wait_until(lambda: replicas(testbed, namespace, "auto")[1] == 2, 60, "2 ready replicas")
        deployment = testbed.get("-n", namespace, "deployment", "auto")
        assert deployment["spec"]["replicas"] == 2
    print(
        f"\nscale 1 -> 3: spec.replicas after {up:.1f}s, 3 ready after {ready:.1f}s; "
        f"3 -> 2 after {down:.1f}s, {since_high:.1f}s after the last high read "
        f"(stabilisation window {WINDOW}s)"
    )


def test_scales_on_what_a_real_prometheus_scraped(
    testbed: Testbed, operator: OperatorProcess, keda: Keda, namespace: str
) -> None:
    """The same path with a real Prometheus between KEDA and vLLM's metric names: it scrapes
    a process serving them under a pod of this resource, and decoys (a pod of another resource
    whose name starts with this one's, the same pod name in another namespace) that the
    rendered PromQL must leave out."""
    with (
        VllmMetrics() as pod,
        VllmMetrics() as longer_name,
        VllmMetrics() as other_namespace,
    ):
        longer_name.waiting(2)
        other_namespace.waiting(2)
        targets = [
            (pod.target, {"namespace": namespace, "pod": "auto-7d9f8b6c5d-x2kqz"}),
            (longer_name.target, {"namespace": namespace, "pod": "auto-big-7d9f8b6c5d-x2kqz"}),
            (other_namespace.target, {"namespace": "elsewhere", "pod": "auto-7d9f8b6c5d-x2kqz"}),
        ]
        with Prometheus(testbed, targets) as prometheus:
            autoscaling = {
                "enabled": True,
                "maxReplicas": 3,
                "target": 2,
                "scaleDownStabilizationSeconds": WINDOW,
                "prometheusAddress": prometheus.url,
            }
            body = manifest(
                "auto", accelerator={"profile": "L40S"}, replicas=1, autoscaling=autoscaling
            )
            waiting = query("auto", namespace, parse_spec(body["spec"]))
            wait_until(lambda: prometheus.value(waiting) == 0, 30, "the first scrapes")
            with testbed.extra_nodes("autoscale-prom", "l40s", 1):
                apply(testbed, namespace, body)
                pod.waiting(5)  # ceil(5 / 2) = 3; with the decoys it would still be 3 (max)
                wait_until(lambda: prometheus.value(waiting) == 5, 30, "Prometheus to see 5")
                # The decoys are scraped too; the rendered query leaves them out.
                assert prometheus.value("sum(vllm:num_requests_waiting)") == 9
                start = time.monotonic()
                wait_until(
                    lambda: replicas(testbed, namespace, "auto")[0] == 3, 90, "spec.replicas 3"
                )
                up = time.monotonic() - start
                pod.waiting(4)  # ceil(4 / 2) = 2; with the decoys' 4 more it would stay 3
                start = time.monotonic()
                wait_until(
                    lambda: replicas(testbed, namespace, "auto")[0] == 2, 120, "spec.replicas 2"
                )
                down = time.monotonic() - start
    print(f"\nreal Prometheus: 1 -> 3 after {up:.1f}s; 3 -> 2 after {down:.1f}s")


def test_resources_made_around_a_start_get_their_scaled_objects_and_no_warning(
    testbed: Testbed, operator: OperatorProcess, keda: Keda, namespace: str
) -> None:
    """The first reconciles after a start wait for Kopf's caches of the add-ons (KEDA's CRD)
    as for the informers'. Resources made before the start and at once after it, whose pods
    can never be scheduled (no B200 nodes: nothing changes for them again), each get their
    ScaledObject, and no "needs KEDA" Warning is ever written: a seeded converge run found a
    ScaledObject missing because the first reconciles planned before the operator knew KEDA
    was installed."""
    autoscaling = {"enabled": True, "maxReplicas": 2, "prometheusAddress": "http://127.0.0.1:9"}

    def unschedulable(name: str) -> dict[str, object]:
        return manifest(name, accelerator={"profile": "B200"}, autoscaling=autoscaling)

    operator.stop()
    before = [f"before-{i}" for i in range(3)]
    for name in before:
        apply(testbed, namespace, unschedulable(name))
    operator.start()
    after = [f"after-{i}" for i in range(3)]
    for name in after:
        apply(testbed, namespace, unschedulable(name))
    for name in before + after:
        wait_condition(testbed, namespace, name, "Degraded", timeout=60)

    def scaled_objects() -> set[str]:
        items = testbed.get("-n", namespace, "scaledobjects")["items"]
        return {i["metadata"]["name"] for i in items}

    wait_until(lambda: scaled_objects() == {*before, *after}, 30, "a ScaledObject for each")
    warnings = testbed.get(
        "-n", namespace, "events", "--field-selector", "reason=AutoscalingUnavailable"
    )["items"]
    assert warnings == []
    for name in before + after:
        assert "message" not in (replicas(testbed, namespace, name)[2].get("autoscaler") or {})


def test_keda_missing_then_installed_while_the_operator_runs(
    testbed: Testbed, operator: OperatorProcess, keda: Keda, namespace: str
) -> None:
    """Without KEDA's CRD a resource with autoscaling serves at spec.replicas and its status
    says autoscaling needs KEDA (one Warning Event); once the CRD is installed its ScaledObject
    appears without any change to the resource: the operator watches add-ons' CRDs. Last in
    this module: KEDA's CRD goes away for a while."""
    testbed.kubectl("delete", "crd", "scaledobjects.keda.sh", "--timeout=60s", timeout=90)

    def scaled_object() -> bool:
        got = testbed.kubectl("-n", namespace, "get", "scaledobject", "later", check=False)
        return got.returncode == 0

    def autoscaler() -> dict[str, object]:
        return dict(replicas(testbed, namespace, "later")[2].get("autoscaler") or {})

    try:
        autoscaling = {"enabled": True, "maxReplicas": 2, "prometheusAddress": "http://127.0.0.1:9"}
        body = manifest("later", autoscaling=autoscaling)
        apply(testbed, namespace, body)
        wait_until(
            lambda: "needs KEDA" in str(autoscaler().get("message")), 60, "the needs-KEDA status"
        )
        wait_condition(testbed, namespace, "later", "Ready", timeout=60)
        warnings = testbed.get(
            "-n", namespace, "events", "--field-selector", "reason=AutoscalingUnavailable"
        )["items"]
        assert len(warnings) == 1
    finally:
        keda.install_crds()
    start = time.monotonic()
    wait_until(scaled_object, 60, "the ScaledObject once KEDA's CRD is installed")
    wait_until(lambda: "message" not in autoscaler(), 30, "status.autoscaler without message")
    print(f"\nScaledObject {time.monotonic() - start:.1f}s after KEDA's CRD was installed")
