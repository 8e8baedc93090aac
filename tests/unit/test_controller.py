"""The controller's write discipline on a fake Kube: only differences the apiserver would see
cost a write, a loop ends in WriteLoop after a bounded number of writes, a burst of edits rolls
out once, and a refused child leaves the others unchanged."""

from __future__ import annotations

import asyncio
import copy
from typing import Any

from gptoss_operator.budget import WRITE_LIMIT
from gptoss_operator.controller import Controller
from gptoss_operator.kube import KubeError
from gptoss_operator.render import SPEC_HASH_ANNOTATION as SPEC_HASH
from support.fakekube import FakeKube

KEY = ("ml", "chat")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def resource(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "gptoss.dev/v1alpha1",
        "kind": "GptOssDeployment",
        "metadata": {"name": "chat", "namespace": "ml", "uid": "u-1", "generation": 1},
        "spec": {"model": {"name": "gpt-oss-20b"}, "accelerator": {"profile": "L40S"}} | spec,
    }


def drop_empty_match_labels(obj: dict[str, Any]) -> dict[str, Any]:
    """What the apiserver does to a NetworkPolicy peer `podSelector: {matchLabels: {}}`."""
    if obj["kind"] == "NetworkPolicy":
        for rule in obj["spec"].get("ingress", []):
            for peer in rule.get("from", []):
                if peer.get("podSelector") == {"matchLabels": {}}:
                    peer["podSelector"] = {}
    return obj


def settle(ctl: Controller, kube: FakeKube, rounds: int = 10) -> None:
    """Reconcile as watch events would trigger it, each time on a caught-up cache."""
    for _ in range(rounds):
        ctl.reconcile(KEY, kube.live())


def test_a_normalised_child_costs_one_dry_run_then_nothing() -> None:
    kube = FakeKube(resource(networkPolicy={"enabled": True}), drop_empty_match_labels)
    ctl = Controller(kube)  # type: ignore[arg-type]
    settle(ctl, kube, rounds=1)
    assert kube.calls["apply NetworkPolicy"] == 1
    before = copy.deepcopy(kube.calls)
    settle(ctl, kube, rounds=50)
    assert kube.calls["apply NetworkPolicy"] == 1, kube.calls
    assert kube.calls["dry-run"] - before["dry-run"] == 1


def test_after_a_restart_a_normalised_child_is_not_written() -> None:
    kube = FakeKube(resource(networkPolicy={"enabled": True}), drop_empty_match_labels)
    settle(Controller(kube), kube)  # type: ignore[arg-type]
    writes = kube.writes()
    settle(Controller(kube), kube)  # type: ignore[arg-type]  # a new process, no memory
    assert kube.writes() == writes


def test_a_child_that_never_converges_ends_in_write_loop() -> None:
    stamp = iter(range(10_000))

    def fight(obj: dict[str, Any]) -> dict[str, Any]:
        # Another controller (or webhook) rewrites a field we own on every write.
        if obj["kind"] == "Service":
            obj["metadata"]["labels"]["app.kubernetes.io/name"] = f"other-{next(stamp)}"
        return obj

    kube = FakeKube(resource(), fight)
    clock = Clock()
    ctl = Controller(kube, clock=clock)  # type: ignore[arg-type]
    settle(ctl, kube, rounds=100)
    loop_writes = WRITE_LIMIT + 1  # past the budget, after the Service was created
    assert kube.calls["apply Service"] == 1 + loop_writes
    assert kube.cr["status"]["reason"] == "WriteLoop"
    degraded = [e for e in kube.events if e[1] == "WriteLoop"]
    assert len(degraded) == 1
    assert "Service chat" in degraded[0][2]
    assert "metadata.labels.app.kubernetes.io/name" in degraded[0][2]
    # Backing off: later events write nothing until the backoff ends, then a bounded few more.
    clock.now += 30
    settle(ctl, kube, rounds=20)
    assert kube.calls["apply Service"] == 1 + loop_writes
    clock.now += 31
    settle(ctl, kube, rounds=20)
    assert kube.calls["apply Service"] == 1 + 2 * loop_writes


def test_a_burst_of_edits_rolls_out_the_last_template_only() -> None:
    kube = FakeKube(resource())
    clock = Clock()
    ctl = Controller(kube, clock=clock)  # type: ignore[arg-type]
    settle(ctl, kube, rounds=2)
    assert kube.calls["apply Deployment"] == 1
    for i in range(20):  # 20 edits, 50 ms apart
        kube.cr["metadata"]["generation"] += 1
        kube.cr["spec"]["engine"] = {"maxNumSeqs": 100 + i}
        clock.now += 0.05
        assert ctl.reconcile(KEY, kube.live())  # asks to be woken when the burst is over
    assert kube.calls["apply Deployment"] == 1
    clock.now += 2.0
    settle(ctl, kube, rounds=3)
    assert kube.calls["apply Deployment"] == 2
    args = kube.objects[("Deployment", "chat")]["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "119" in " ".join(args)  # the last edit's --max-num-seqs


def test_a_refused_child_leaves_the_others_unchanged() -> None:
    kube = FakeKube(resource())
    ctl = Controller(kube)  # type: ignore[arg-type]
    settle(ctl, kube, rounds=2)
    before = copy.deepcopy(kube.objects)
    kube.cr["metadata"]["generation"] = 2
    kube.cr["spec"]["service"] = {"port": 9000}
    kube.cr["spec"]["replicas"] = 2

    def refuse_service(manifest: dict[str, Any]) -> KubeError | None:
        if manifest["kind"] == "Service":
            return KubeError("apply Service", 403, "exceeded quota: services")
        return None

    kube.refuse = refuse_service
    ctl.reconcile(KEY, kube.live())
    assert kube.objects == before
    assert kube.cr["status"]["reason"] == "ApplyFailed"


def test_a_write_refused_because_the_namespace_is_going_writes_no_failure() -> None:
    """A namespace being deleted refuses new objects (403) before anything in it shows a
    deletionTimestamp, as a restarted operator sees it: no Failed status, no Event."""
    kube = FakeKube(resource())
    ctl = Controller(kube)  # type: ignore[arg-type]
    kube.terminating.add(KEY[0])

    def refuse_all(manifest: dict[str, Any]) -> KubeError | None:
        return KubeError(f"apply {manifest['kind']}", 403, "namespace is being terminated")

    kube.refuse = refuse_all
    ctl.reconcile(KEY, kube.live())
    assert "status" not in kube.cr
    assert kube.events == []
    assert kube.calls["get namespace"] == 1


def test_an_apply_refused_over_a_foreign_edit_is_restored_by_replacing() -> None:
    kube = FakeKube(resource())
    ctl = Controller(kube)  # type: ignore[arg-type]
    settle(ctl, kube, rounds=2)
    # Someone changed the port: our apply now adds a second port named "http".
    kube.objects[("Service", "chat")]["spec"]["ports"][0]["port"] = 9000
    kube.refuse = lambda m: (
        KubeError("apply Service", 422, 'spec.ports[1].name: Duplicate value: "http"')
        if m["kind"] == "Service"
        else None
    )
    ctl.reconcile(KEY, kube.live())
    assert kube.calls["replace Service"] == 1
    assert kube.objects[("Service", "chat")]["spec"]["ports"][0]["port"] == 8000
    assert [e[1] for e in kube.events].count("DriftRestored") == 1


def test_a_persistent_error_in_pure_code_ends_in_status(monkeypatch: Any) -> None:
    kube = FakeKube(resource())
    ctl = Controller(kube)  # type: ignore[arg-type]
    live = kube.live()
    ctl._report_failure(KEY, ctl._state(KEY), live, AttributeError("boom"))
    assert kube.cr["status"]["reason"] == "ReconcileError"
    assert "AttributeError: boom" in kube.cr["status"]["message"]


def _pod(ready: bool, started: bool, template: str) -> dict[str, Any]:
    """The vLLM pod as the kubelet reports it: scheduled and running, its startup probe passed
    (started), and Ready."""
    container: dict[str, Any] = {"name": "vllm", "state": {"running": {}}, "started": started}
    return {
        "metadata": {"name": "chat-1", "uid": "p-1", "annotations": {SPEC_HASH: template}},
        "status": {
            "phase": "Running",
            "containerStatuses": [container],
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
        },
    }


def test_a_new_resource_costs_its_children_and_two_status_writes_at_most() -> None:
    """Creation to Ready, step by step as the watches deliver it: children once, no Event, and
    the status written when it is news (Ready at once, the pods' progress at most once)."""
    kube = FakeKube(resource())
    clock = Clock()
    ctl = Controller(kube, clock=clock)  # type: ignore[arg-type]
    pods: list[dict[str, Any]] = []

    def step(seconds: float) -> None:
        clock.now += seconds
        live = kube.live()
        live.pods = copy.deepcopy(pods)
        ctl.reconcile(KEY, live)

    step(0)  # created: every child applied; "progressing" is no news yet
    children = kube.writes()
    assert "status" not in kube.cr
    step(0.2)  # the Deployment reaches the cache
    deployment = kube.objects[("Deployment", "chat")]
    template = deployment["spec"]["template"]["metadata"]["annotations"][SPEC_HASH]
    deployment["status"] = {"observedGeneration": 0, "replicas": 1, "updatedReplicas": 1}
    pods.append(_pod(ready=False, started=False, template=template))
    step(0.5)  # kube-controller-manager created the pod; it is loading the model
    for _ in range(20):  # a slow start: the held progress is written once after the delay
        step(1.0)
    assert kube.cr["status"]["reason"] == "Starting"
    pods[0] = _pod(ready=True, started=True, template=template)
    step(0.1)  # the kubelet says Ready: Ready at once, before the Deployment's status says so
    assert kube.cr["status"]["phase"] == "Ready"
    assert kube.cr["status"]["readyReplicas"] == 1
    deployment["status"] |= {"readyReplicas": 1, "availableReplicas": 1}
    for _ in range(30):  # the Deployment's status catches up; then idle
        step(1.0)
    assert kube.calls["patch status"] == 2
    assert kube.calls["event"] == 0
    assert kube.writes() == children + 2


def test_a_quick_start_writes_the_status_once() -> None:
    kube = FakeKube(resource())
    clock = Clock()
    ctl = Controller(kube, clock=clock)  # type: ignore[arg-type]
    ctl.reconcile(KEY, kube.live())
    deployment = kube.objects[("Deployment", "chat")]
    template = deployment["spec"]["template"]["metadata"]["annotations"][SPEC_HASH]
    deployment["status"] = {"observedGeneration": 0, "replicas": 1, "updatedReplicas": 1}
    clock.now += 2
    live = kube.live()
    live.pods = [_pod(ready=True, started=True, template=template)]
    ctl.reconcile(KEY, live)
    assert kube.calls["patch status"] == 1
    assert kube.cr["status"]["phase"] == "Ready"


def test_new_resources_are_reconciled_before_status_only_work() -> None:
    """A burst of new resources gets its children before known ones refresh their status."""
    kube = FakeKube(resource())
    ctl = Controller(kube, workers=1)  # type: ignore[arg-type]
    known, new = ("ml", "known"), ("ml", "new")
    crs = {k: [{**resource(), "metadata": {"name": k[1], "generation": 1}}] for k in (known, new)}
    ctl.bind({"gptoss_by_key": crs})
    ctl._state(known).generation = 1  # reconciled before: only its pods changed
    order: list[tuple[str, str]] = []

    def record(key: tuple[str, str], live: Any) -> None:
        order.append(key)

    ctl.reconcile = record  # type: ignore[method-assign,assignment]

    async def burst() -> None:
        # Both are queued before the one worker takes any: it must take the new one first.
        await ctl.request(known)
        await ctl.request(new)
        await ctl.request(new)  # absorbed: already queued
        await ctl.idle()

    asyncio.run(burst())
    ctl.stop()
    assert order == [new, known]


def test_a_status_update_waits_for_new_resources_one_second_at_most() -> None:
    kube = FakeKube(resource())
    clock = Clock()
    ctl = Controller(kube, clock=clock, workers=1)  # type: ignore[arg-type]
    known, new = ("ml", "known"), ("ml", "new")
    crs = {k: [{**resource(), "metadata": {"name": k[1], "generation": 1}}] for k in (known, new)}
    ctl.bind({"gptoss_by_key": crs})
    ctl._state(known).generation = 1
    order: list[tuple[str, str]] = []
    ctl.reconcile = lambda key, live: order.append(key)  # type: ignore[method-assign,assignment,func-returns-value]

    async def stream() -> None:
        await ctl.request(known)  # its pod turned Ready
        clock.now += 1.5  # new resources kept arriving meanwhile
        await ctl.request(new)
        await ctl.idle()

    asyncio.run(stream())
    ctl.stop()
    assert order == [known, new]


def test_a_status_update_waits_one_second_at_most_behind_a_start_of_many_new() -> None:
    """At a start every resource is requested at once; a pod turning Ready a moment later must
    not wait behind all of them (it waited 17 s at 1,000 resources when the queue was ordered
    by due time)."""
    kube = FakeKube(resource())
    clock = Clock()
    ctl = Controller(kube, clock=clock, workers=1)  # type: ignore[arg-type]
    news = [("ml", f"new{i}") for i in range(3)]
    known = ("ml", "known")
    crs = {k: [{**resource(), "metadata": {"name": k[1], "generation": 1}}] for k in [*news, known]}
    ctl.bind({"gptoss_by_key": crs})
    ctl._state(known).generation = 1
    order: list[tuple[str, str]] = []
    ctl.reconcile = lambda key, live: order.append(key)  # type: ignore[method-assign,assignment,func-returns-value]

    async def start() -> None:
        for key in news:
            await ctl.request(key)
        await ctl.request(known)  # its pod turned Ready
        clock.now += 1.5  # the new ones are still waiting for a worker
        await ctl.idle()

    asyncio.run(start())
    ctl.stop()
    assert order == [known, *news]


def test_a_child_deleted_while_the_watch_was_away_is_applied_again() -> None:
    """No DELETED event came (the apiserver restarted); the watchdog found the ghost."""
    kube = FakeKube(resource())
    ctl = Controller(kube)  # type: ignore[arg-type]
    settle(ctl, kube, rounds=2)
    gone = kube.objects.pop(("Service", "chat"))
    ctl.reconcile(KEY, kube.live())  # the cache lags: our record says "on its way"
    assert ("Service", "chat") not in kube.objects
    ctl.ghost(gone["metadata"].get("uid", "svc-uid"), KEY)
    ctl.reconcile(KEY, kube.live())
    assert ("Service", "chat") in kube.objects


def test_a_deleted_resource_leaves_no_state_behind_its_childrens_late_events() -> None:
    """Garbage collection deletes the children after their owner: their DELETED events, and a
    timer set before the deletion, arrive for a resource already forgotten. The controller must
    keep nothing for it, or a fleet that churns grows its memory without bound."""
    kube = FakeKube(resource())
    ctl = Controller(kube, workers=1)  # type: ignore[arg-type]
    crs: dict[tuple[str, str], list[dict[str, Any]]] = {KEY: [resource()]}
    ctl.bind({"gptoss_by_key": crs})

    async def churn() -> None:
        await ctl.request(KEY)
        await ctl.idle()
        del crs[KEY]
        ctl.resource_changed(KEY, "chat")  # the DELETED event of the resource
        for kind in ("Deployment", "Service", "PodDisruptionBudget", "Pod"):
            ctl.child_changed(kind, KEY, "chat")  # then its children's
        ctl.notify(KEY)  # a timer set before the deletion
        await ctl.idle()

    asyncio.run(churn())
    ctl.stop()
    assert ctl._keys == {}
    assert ctl.queue_depth() == (0, 0, 0)
