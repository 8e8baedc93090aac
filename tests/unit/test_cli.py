"""`gptoss-operator run`: every flag reaches Kopf, and no flag is parsed only to be ignored."""

from __future__ import annotations

import argparse
import inspect
from typing import Any

import kopf
import pytest

from gptoss_operator import operator_main
from gptoss_operator.cli import main, parser


@pytest.fixture
def kopf_calls(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    calls: dict[str, Any] = {}
    monkeypatch.setattr(kopf, "configure", lambda **kw: calls.update(kw))
    monkeypatch.setattr(kopf, "run", lambda **kw: calls.update(kw))
    return calls


def test_run_without_namespaces_watches_the_cluster(kopf_calls: dict[str, Any]) -> None:
    assert main(["run"]) == 0
    assert kopf_calls == {
        "verbose": False,
        "standalone": True,
        "clusterwide": True,
        "namespaces": [],
        "liveness_endpoint": None,
    }


def test_run_passes_namespaces_verbosity_and_liveness(kopf_calls: dict[str, Any]) -> None:
    url = "http://0.0.0.0:8080/healthz"
    assert main(["run", "-n", "team-a", "--namespace=team-b", "--verbose", "--liveness", url]) == 0
    assert kopf_calls["clusterwide"] is False
    assert kopf_calls["namespaces"] == ["team-a", "team-b"]
    assert kopf_calls["verbose"] is True
    assert kopf_calls["liveness_endpoint"] == url


def _run_parser() -> argparse.ArgumentParser:
    (sub,) = [a for a in parser()._actions if isinstance(a, argparse._SubParsersAction)]
    return sub.choices["run"]


def test_every_run_flag_is_read() -> None:
    source = inspect.getsource(operator_main)
    dests = {a.dest for a in _run_parser()._actions if a.dest not in ("help", "func")}
    assert dests
    assert {d for d in dests if f"args.{d}" not in source} == set()


@pytest.mark.parametrize("flag", ["-A", "--all-namespaces", "--standalone"])
def test_removed_flags_are_refused(flag: str) -> None:
    with pytest.raises(SystemExit):
        parser().parse_args(["run", flag])
