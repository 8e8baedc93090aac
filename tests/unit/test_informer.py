"""informer.py: what a cache holds after lists and watch events, and whom it tells. The list and
watch against a real apiserver (pages, 410, outages) run in the e2e and fault suites."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

from gptoss_operator.informer import Informer, Source, owner_of
from gptoss_operator.kube import Resource

Key = tuple[str, str]


def pod(name: str, owner: str, version: str = "1", uid: str | None = None) -> dict[str, Any]:
    return {
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": "ns",
            "uid": uid or f"uid-{name}",
            "resourceVersion": version,
            "labels": {"app.kubernetes.io/instance": owner},
        },
    }


@pytest.fixture
def informer() -> Iterator[tuple[Informer, list[tuple[Key, str | None]]]]:
    told: list[tuple[Key, str | None]] = []
    source = Source(
        "pods_by_owner",
        "Pod",
        "v1",
        Resource("", "v1", "pods"),
        "sel",
        owner_of,
        lambda key, name: told.append((key, name)),
    )
    loop = asyncio.new_event_loop()
    yield Informer(None, source, None, loop), told  # type: ignore[arg-type]
    loop.close()


def entries(*pods: dict[str, Any]) -> list[tuple[Key, dict[str, Any]]]:
    return [(owner_of(p), p) for p in pods]


def event(inf: Informer, deleted: bool, obj: dict[str, Any]) -> None:
    inf._event(deleted, owner_of(obj), obj)


def test_pods_are_cached_under_their_owner_although_the_cached_form_drops_the_label(
    informer: Any,
) -> None:
    inf, _told = informer
    key, cached = inf._cached(pod("a-1", "a"))
    assert key == ("ns", "a")
    assert "app.kubernetes.io/instance" not in (cached["metadata"].get("labels") or {})


def test_first_list_fills_the_cache_and_tells_no_one(informer: Any) -> None:
    inf, told = informer
    inf._replace(entries(pod("a-1", "a"), pod("a-2", "a"), pod("b-1", "b")))
    assert [p["metadata"]["name"] for p in inf.index[("ns", "a")]] == ["a-1", "a-2"]
    assert len(inf.index[("ns", "b")]) == 1
    assert inf.listed.is_set()
    assert told == []


def test_a_relist_drops_what_was_deleted_meanwhile_and_tells_the_owners(informer: Any) -> None:
    """An object deleted while the watch was away leaves no ghost; its owner hears of it by
    name (it must apply that child again), and the owner of a changed object is told."""
    inf, told = informer
    inf._replace(entries(pod("a-1", "a"), pod("b-1", "b"), pod("c-1", "c")))
    inf._replace(entries(pod("b-1", "b", version="2"), pod("c-1", "c"), pod("d-1", "d")))
    assert ("ns", "a") not in inf.index
    assert sorted(told) == [(("ns", "a"), "a-1"), (("ns", "b"), None), (("ns", "d"), None)]


def test_watch_events_update_delete_and_move_objects(informer: Any) -> None:
    inf, told = informer
    inf._replace(entries(pod("a-1", "a")))
    event(inf, False, pod("a-2", "a"))
    event(inf, False, pod("a-1", "a", version="2"))
    # Updated in place: the order of a resource's pods is the order they appeared in.
    assert [p["metadata"]["resourceVersion"] for p in inf.index[("ns", "a")]] == ["2", "1"]
    event(inf, True, pod("a-2", "a"))
    assert len(inf.index[("ns", "a")]) == 1
    # Its instance label edited by someone: it leaves a and joins b; both are told.
    event(inf, False, pod("a-1", "b", version="3"))
    assert ("ns", "a") not in inf.index
    assert told[-2:] == [(("ns", "a"), "a-1"), (("ns", "b"), None)]
    event(inf, True, pod("a-1", "b", version="4"))
    assert ("ns", "b") not in inf.index
    assert told[-1] == (("ns", "b"), "a-1")


def test_owner_reference_wins_over_labels() -> None:
    obj = pod("x", "label-owner")
    obj["metadata"]["ownerReferences"] = [
        {"apiVersion": "gptoss.dev/v1alpha1", "kind": "GptOssDeployment", "name": "real"},
        {
            "apiVersion": "gptoss.dev/v1alpha1",
            "kind": "GptOssDeployment",
            "name": "ref-owner",
            "controller": True,
        },
    ]
    assert owner_of(obj) == ("ns", "ref-owner")
    assert owner_of(pod("y", "label-owner")) == ("ns", "label-owner")
