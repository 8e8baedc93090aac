"""Every valid spec converges and then goes quiet (issue: converge and quiet).

A seeded generator draws GptOssDeployments across every model, profile, custom accelerator,
optional child, API key, engine override, rollout setting and pod behaviour. Together with every
file in manifests/examples/ (the `make run` demo) and one spec with every option on, each must
reach its expected state with exactly its expected children, and then the operator must make 0
writes (and 0 dry-runs) in a 30 s window, counted from the apiserver's audit log.
"""

from __future__ import annotations

import collections
import os
import random
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
import yaml

from gptoss_operator.controller import PROGRESS_STATUS_DELAY
from gptoss_operator.render import kinds, resolve
from gptoss_operator.validation import parse_spec
from support.gptoss import apply_all, condition
from support.operator import OperatorProcess
from support.specgen import (
    API_KEY_SECRET,
    SHARED_CLAIM,
    Drawn,
    draw,
    everything_on,
)
from support.testbed import REPO, Testbed, describe_write, wait_until

pytestmark = pytest.mark.testbed
OPERATOR_USER = "gptoss-operator"
DRAWN = int(os.environ.get("CONVERGE_SPECS", "100"))
QUIET_WINDOW_SECONDS = 30
EXAMPLES = sorted((REPO / "manifests" / "examples").glob("*.yaml"))
CHILD_KINDS = ",".join(f"{k.plural}.{k.group}".rstrip(".") for k in kinds.CHILD_KINDS)


def example(path: Path) -> Drawn:
    body = yaml.safe_load(path.read_text())
    body["metadata"].pop("namespace", None)  # applied into the test's namespace
    profile = body["spec"].get("accelerator", {}).get("profile")
    kind = {"H100-80GB": "h100", "L40S": "l40s", "A100-40GB": "a100-40gb"}[profile]
    spec = parse_spec(body["spec"])
    return Drawn(body, ("Ready", "Available"), kind, resolve(spec).gpus_per_replica * spec.replicas)


def prerequisites(testbed: Testbed, namespace: str) -> None:
    """What the specs refer to and a real cluster would already have: Secrets and claims."""
    for secret in (API_KEY_SECRET, "gptoss-api-key"):
        testbed.kubectl(
            "-n",
            namespace,
            "create",
            "secret",
            "generic",
            secret,
            "--from-literal=key=k",
            "--from-literal=api-key=k",
        )
    for claim in (SHARED_CLAIM, "gpt-oss-120b-weights"):
        testbed.apply(
            namespace,
            {
                "apiVersion": "v1",
                "kind": "PersistentVolumeClaim",
                "metadata": {"name": claim},
                "spec": {
                    "accessModes": ["ReadWriteMany"],
                    "resources": {"requests": {"storage": "200Gi"}},
                },
            },
        )


def nodes_for(testbed: Testbed, stack: ExitStack, drawn: list[Drawn]) -> None:
    """A node of the right kind for every pod: the scheduler spreads pods over the least
    allocated nodes, so a pool sized by GPU count leaves no empty node for a TP 8 pod."""
    pods: collections.Counter[str] = collections.Counter()
    for d in drawn:
        if d.node_kind and d.gpus:
            pods[d.node_kind] += int(d.body["spec"].get("replicas", 1))
    for kind, count in pods.items():
        stack.enter_context(testbed.extra_nodes(f"conv-{kind}", kind, count + 1))


def reached(obj: dict[str, Any], expect: tuple[str, str]) -> bool:
    kind, reason = expect
    c = condition(obj, kind)
    return c.get("status") == "True" and c.get("reason") == reason


def operator_requests(testbed: Testbed, since: int, namespace: str) -> tuple[list[str], list[str]]:
    writes = testbed.audit_writes(since, OPERATOR_USER, namespace)
    dry = testbed.audit_dry_runs(since, OPERATOR_USER, namespace)
    return [describe_write(e) for e in writes], [describe_write(e) for e in dry]


@pytest.fixture
def drawn() -> list[Drawn]:
    seed = int(os.environ.get("CONVERGE_SEED", random.randrange(1 << 30)))  # noqa: S311
    print(f"\nspec generator seed: {seed} (CONVERGE_SEED={seed} repeats this draw)")
    rng = random.Random(seed)  # noqa: S311  (test data, not secrets)
    # The session's CRD fixture installs the PodMonitor and KEDA CRDs: their children are drawn.
    specs = [draw(rng, f"s{i:03d}", podmonitor_crd=True, keda_crd=True) for i in range(DRAWN)]
    specs += [example(p) for p in EXAMPLES]
    specs.append(everything_on("everything", podmonitor_crd=True, keda_crd=True))
    return specs


def test_every_drawn_spec_converges_then_goes_quiet(
    testbed: Testbed, operator: OperatorProcess, namespace: str, drawn: list[Drawn]
):
    started = time.monotonic()
    outcomes = collections.Counter(d.expect for d in drawn)
    print("expected outcomes:", dict(outcomes))
    with ExitStack() as stack:
        nodes_for(testbed, stack, drawn)
        prerequisites(testbed, namespace)
        apply_all(testbed, namespace, [d.body for d in drawn])

        by_name = {d.name: d for d in drawn}

        def pending() -> list[str]:
            items = testbed.get("-n", namespace, "gptossdeployments")["items"]
            got = {i["metadata"]["name"]: i for i in items}
            return [
                f"{n}: want {d.expect}, status {got.get(n, {}).get('status', {}).get('reason')}: "
                f"{got.get(n, {}).get('status', {}).get('message')} (spec {d.body['spec']})"
                for n, d in by_name.items()
                if not reached(got.get(n, {}), d.expect)
            ]

        try:
            wait_until(lambda: not pending(), 240, "every resource in its expected state")
        except AssertionError as timeout:
            raise AssertionError(f"{timeout}: {pending()[:5]}") from None
        converged = time.monotonic() - started

        live: dict[str, set[tuple[str, str]]] = collections.defaultdict(set)
        for item in testbed.get(
            "-n", namespace, CHILD_KINDS, "-l", "app.kubernetes.io/managed-by=gptoss-operator"
        )["items"]:
            instance = item["metadata"]["labels"]["app.kubernetes.io/instance"]
            live[instance].add((item["kind"], item["metadata"]["name"]))
        wrong = {
            d.name: (sorted(live[d.name]), sorted(d.children(namespace)))
            for d in drawn
            if live[d.name] != d.children(namespace)
        }
        assert not wrong, f"children differ (live, expected): {wrong}"

        # Let the last status writes land (a progress-only change is held up to
        # PROGRESS_STATUS_DELAY), then measure a quiet window.
        settle = PROGRESS_STATUS_DELAY + 1

        def quiet() -> bool:
            mark = testbed.audit_mark()
            time.sleep(settle)
            return operator_requests(testbed, mark, namespace) == ([], [])

        wait_until(quiet, 120, f"{settle:.0f} s without operator requests", interval=0)
        log_before = operator.log_path.stat().st_size
        mark = testbed.audit_mark()
        time.sleep(QUIET_WINDOW_SECONDS)  # the window is the measurement
        writes, dry_runs = operator_requests(testbed, mark, namespace)
        log_lines = operator.log_path.read_bytes()[log_before:].decode(errors="replace")
        print(
            f"{len(drawn)} resources in their expected state after {converged:.1f}s; "
            f"in {QUIET_WINDOW_SECONDS}s idle: {len(writes)} writes, {len(dry_runs)} dry-runs, "
            f"{len(log_lines.splitlines())} operator log lines"
        )
        assert writes == []
        assert dry_runs == []
        assert len(log_lines.splitlines()) <= 3, log_lines
