"""Fixtures shared by every tier: the test bed (started once per run) and a namespace per test."""

from __future__ import annotations

import os
import re
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.operator import OperatorProcess
from support.testbed import REPO, TESTBED_SCRIPTS, Testbed, binaries, wait_until

CRD_FILE = REPO / "manifests" / "crds" / "gptossdeployments.yaml"
PODMONITOR_CRD = TESTBED_SCRIPTS / "crds" / "podmonitors.yaml"


@pytest.fixture(scope="session")
def testbed() -> Iterator[Testbed]:
    """The running test bed: reuses one `make testbed-up` started, else starts (and stops) one."""
    state = Path(os.environ.get("TESTBED_DIR", REPO / ".testbed"))
    bins = binaries()
    bed = Testbed(state=state, bins=bins)
    running = (
        bed.kubeconfig.exists() and bed.kubectl("get", "--raw=/readyz", check=False).returncode == 0
    )
    if not running:
        subprocess.run(["bash", str(TESTBED_SCRIPTS / "up.sh")], check=True, timeout=600)
        bed.started_here = True
    try:
        yield bed
    finally:
        if bed.started_here and not os.environ.get("TESTBED_KEEP"):
            subprocess.run(["bash", str(TESTBED_SCRIPTS / "down.sh")], check=False, timeout=120)


@pytest.fixture
def kubectl(testbed: Testbed):  # type: ignore[no-untyped-def]
    """kubectl as the test bed's admin: kubectl(*args, input=None, check=True)."""
    return testbed.kubectl


@pytest.fixture
def namespace(testbed: Testbed, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh namespace for one test, deleted afterwards (without waiting for it to go)."""
    stem = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")[:40].strip("-")
    name = f"{stem}-{uuid.uuid4().hex[:5]}"
    testbed.kubectl("create", "namespace", name)
    # Pods are refused until the controller-manager has made the namespace's default account.
    wait_until(
        lambda: (
            testbed.kubectl("-n", name, "get", "serviceaccount", "default", check=False).returncode
            == 0
        ),
        timeout=30,
        what=f"default ServiceAccount in {name}",
    )
    yield name
    testbed.kubectl("delete", "namespace", name, "--wait=false", check=False)


@pytest.fixture(scope="session")
def gptoss_crd(testbed: Testbed) -> Path:
    """The GptOssDeployment CRD from manifests/, applied server-side and Established."""
    # The PodMonitor and KEDA CRDs too, before the operator starts: it renders and watches
    # only kinds that exist. KEDA itself runs only for the autoscaling tests (support/keda.py).
    keda_crds = sorted((testbed.bins["KEDA_BIN"] / "crds").glob("*.yaml"))
    for crd in (CRD_FILE, PODMONITOR_CRD, *keda_crds):
        testbed.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(crd))
    testbed.kubectl(
        "wait",
        "--for=condition=Established",
        "crd/gptossdeployments.gptoss.dev",
        "crd/podmonitors.monitoring.coreos.com",
        "crd/scaledobjects.keda.sh",
        "--timeout=60s",
    )
    return CRD_FILE


@pytest.fixture(scope="session")
def operator(testbed: Testbed, gptoss_crd: Path) -> Iterator[OperatorProcess]:
    """The operator running as a real process, cluster-wide, as the `gptoss-operator` user."""
    process = OperatorProcess(testbed.operator_kubeconfig, testbed.state / "logs" / "operator.log")
    process.start()
    try:
        yield process
    finally:
        process.stop()
