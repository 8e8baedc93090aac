"""The watchdog's ghost and staleness rules, and the Lease rules of leader election, on fakes."""

from __future__ import annotations

import copy
import datetime
from typing import Any

from gptoss_operator.controller import Controller
from gptoss_operator.kube import KubeError
from gptoss_operator.leader import LEASE_SECONDS, LeaderElection
from gptoss_operator.watchdog import Watchdog

KEY = ("ml", "chat")


def cached(uid: str, version: int) -> dict[str, tuple[tuple[str, str], int]]:
    return {uid: (KEY, version)}


def watchdog() -> Watchdog:
    return Watchdog(Controller(kube=None), kube=None, label_selector="")  # type: ignore[arg-type]


def test_an_object_missing_from_a_newer_list_is_a_ghost() -> None:
    dog = watchdog()
    affected = dog.compare(
        {"deployments_by_owner": cached("d1", 10)}, {"deployments_by_owner": ({}, 20)}
    )
    assert affected == {KEY}
    assert "d1" in dog.controller._ghosts


def test_an_object_newer_than_the_list_is_not_a_ghost() -> None:
    dog = watchdog()
    # Created after the list was taken: its watch event came first.
    affected = dog.compare(
        {"deployments_by_owner": cached("d1", 30)}, {"deployments_by_owner": ({}, 20)}
    )
    assert affected == set()
    assert dog.controller._ghosts == set()


def test_a_cache_behind_at_two_resyncs_is_stale() -> None:
    dog = watchdog()
    listed = {"pods_by_owner": ({"p1": 40}, 50)}
    dog.compare({"pods_by_owner": cached("p1", 30)}, listed)
    assert dog.stale is None  # once behind: the watch may simply not have delivered it yet
    dog.compare({"pods_by_owner": cached("p1", 35)}, {"pods_by_owner": ({"p1": 60}, 70)})
    assert dog.stale is not None
    dog.compare({"pods_by_owner": cached("p1", 60)}, {"pods_by_owner": ({"p1": 60}, 80)})
    assert dog.stale is None


class FakeLeases:
    def __init__(self) -> None:
        self.lease: dict[str, Any] | None = None
        self.version = 0

    def get_lease(self, namespace: str, name: str) -> dict[str, Any] | None:
        return copy.deepcopy(self.lease)

    def write_lease(self, lease: dict[str, Any]) -> dict[str, Any]:
        current = self.lease["metadata"]["resourceVersion"] if self.lease else None
        if lease["metadata"].get("resourceVersion") != current:
            raise KubeError("write lease", 409, "conflict")
        self.version += 1
        self.lease = copy.deepcopy(lease)
        self.lease["metadata"]["resourceVersion"] = str(self.version)
        return self.lease


def elector(kube: FakeLeases, me: str) -> LeaderElection:
    return LeaderElection(Controller(kube), kube, "ops", "gptoss-operator", me=me)  # type: ignore[arg-type]


def test_one_holder_at_a_time_and_takeover_after_expiry() -> None:
    kube = FakeLeases()
    a, b = elector(kube, "a"), elector(kube, "b")
    assert a.try_acquire()
    assert not b.try_acquire()
    assert a.try_acquire()  # renewal
    # a dies: its last renewal ages past the lease duration
    old = datetime.datetime.now(datetime.UTC) - datetime.timedelta(seconds=LEASE_SECONDS + 1)
    assert kube.lease is not None
    kube.lease["spec"]["renewTime"] = old.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    assert b.try_acquire()
    assert kube.lease["spec"]["holderIdentity"] == "b"
    assert kube.lease["spec"]["leaseTransitions"] == 1
    assert not a.try_acquire()


def test_a_released_lease_is_taken_at_once() -> None:
    kube = FakeLeases()
    a, b = elector(kube, "a"), elector(kube, "b")
    assert a.try_acquire()
    a.leading = True
    a.release()
    assert not a.controller.active
    assert b.try_acquire()
