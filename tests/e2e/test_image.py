"""The operator image as the operator: the image `make image` builds, installed with the packaged
chart, runs its entrypoint as user 65532 with the chart's arguments and a token of the chart's
ServiceAccount, and serves both examples of manifests/examples/ to Ready. The audit log shows
the writes were the ServiceAccount's; the container wrote nothing outside /tmp, so it would run
on a read-only root filesystem.

The image runs under buildah with chroot isolation: no container runtime, user namespaces or
cgroups needed (`podman run` fails on machines like CI's: crun cannot set RLIMIT_NPROC). The
chroot shares the host's network, so the operator reaches the test bed's apiserver on 127.0.0.1.
A ValidatingAdmissionPolicy fences the work namespace to the ServiceAccount, as in
test_helm_install.py, so no other operator of the session can make the examples Ready.
"""

from __future__ import annotations

import json
import os
import subprocess
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from test_helm_install import (
    fence,
    rbac_denials,
    restricted,
    sa_user,
    unfence,
    unique,
    writes_by,
)

from support import process
from support.testbed import REPO, Testbed, wait_until

pytestmark = [pytest.mark.testbed, pytest.mark.usefixtures("gptoss_crd")]

EXAMPLES = sorted((REPO / "manifests" / "examples").glob("*.yaml"))
NAMES = [yaml.safe_load(p.read_text())["metadata"]["name"] for p in EXAMPLES]
UID = 65532
# Where a pod finds its ServiceAccount (/var/run/secrets/...): the image runs Kubernetes'
# in-cluster configuration. /var/run links to /run in Debian, and buildah mounts a fresh /run,
# so the volume goes to the link's target.
SA_DIR = "/run/secrets/kubernetes.io/serviceaccount"


@pytest.fixture(scope="module")
def image() -> dict[str, str]:
    """The image of this checkout (`make image`; a no-op when CI built it already)."""
    subprocess.run(
        ["bash", str(REPO / "images" / "operator" / "build.sh")],
        check=True,
        timeout=900,
        env={**os.environ, "SBOM": "0"},
    )
    text = (REPO / "dist" / "image.env").read_text()
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)


def _buildah(*args: str) -> str:
    return subprocess.run(
        ["buildah", *args], check=True, capture_output=True, text=True, timeout=120
    ).stdout.strip()


def pod_identity(testbed: Testbed, namespace: str, account: str, out: Path) -> dict[str, str]:
    """What the kubelet gives a pod of `account`: the files of its ServiceAccount volume (token,
    CA, namespace) in `out`, and the environment that points at the apiserver."""
    out.mkdir()
    token = testbed.kubectl("-n", namespace, "create", "token", account, "--duration=30m")
    (out / "token").write_text(token.stdout.strip())
    (out / "namespace").write_text(namespace)
    cluster = yaml.safe_load(testbed.kubeconfig.read_text())["clusters"][0]["cluster"]
    (out / "ca.crt").write_bytes(Path(cluster["certificate-authority"]).read_bytes())
    for path in [out, *out.iterdir()]:  # readable by the container's user, like the volume
        path.chmod(0o755 if path.is_dir() else 0o644)
    server = urllib.parse.urlsplit(cluster["server"])
    return {
        "KUBERNETES_SERVICE_HOST": str(server.hostname),
        "KUBERNETES_SERVICE_PORT": str(server.port),
    }


class ImageOperator:
    """The image's entrypoint in a buildah working container, started and stopped like a pod."""

    def __init__(
        self, image: str, identity: Path, env: dict[str, str], args: list[str], log_path: Path
    ) -> None:
        self.port = process.free_port()
        self.metrics_port = process.free_port()
        self.log_path = log_path
        self.container = _buildah("from", "--pull=never", image)
        config = json.loads(_buildah("inspect", "--type", "container", self.container))
        entrypoint = config["OCIv1"]["config"]["Entrypoint"]
        assert entrypoint == ["gptoss-operator", "run"], entrypoint
        for key, value in env.items():
            _buildah("config", "--env", f"{key}={value}", self.container)
        self.command = [
            "buildah", "run", "--isolation", "chroot", "--network", "host",
            "--user", f"{UID}:{UID}",
            "-v", f"{identity}:{SA_DIR}:ro",
            self.container, "--", *entrypoint, *args,
            "--liveness", f"http://127.0.0.1:{self.port}/healthz",
            "--metrics-address=127.0.0.1", f"--metrics-port={self.metrics_port}",
        ]  # fmt: skip
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            # Its own process group: stopping it reaches the operator under buildah too.
            self.proc = subprocess.Popen(
                self.command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        wait_until(self._alive, 90, f"the image's operator on :{self.port} ({self.log_path})")

    def _alive(self) -> bool:
        url = f"http://127.0.0.1:{self.port}/healthz"
        return process.answers(self.proc, url, "the image's operator", self.log_path)

    def operator_uids(self) -> set[int]:
        """Real and effective user ids of the processes that run `gptoss-operator run` here."""
        uids = set()
        for status in Path("/proc").glob("[0-9]*/status"):
            try:
                cmdline = (status.parent / "cmdline").read_bytes().split(b"\0")
                text = status.read_text()
            except OSError:
                continue
            marker = f"http://127.0.0.1:{self.port}/healthz".encode()
            if marker in cmdline and not cmdline[0].endswith(b"buildah"):
                line = next(x for x in text.splitlines() if x.startswith("Uid:"))
                uids |= {int(u) for u in line.split()[1:3]}
        return uids

    def changed_paths(self) -> list[str]:
        """What the container wrote to its root filesystem (outside its mounts)."""
        mount = Path(_buildah("mount", self.container))
        try:
            upper = Path(
                subprocess.run(
                    ["findmnt", "-n", "-o", "OPTIONS", str(mount)],
                    check=True,
                    capture_output=True,
                    text=True,
                )
                .stdout.split("upperdir=")[1]
                .split(",")[0]
            )
            return sorted("/" + str(p.relative_to(upper)) for p in upper.rglob("*"))
        finally:
            _buildah("umount", self.container)

    def stop(self) -> None:
        process.stop(self.proc, timeout=30, group=True)

    def remove(self) -> None:
        _buildah("rm", self.container)

    def log_tail(self, lines: int = 40) -> str:
        return process.log_tail(self.log_path, lines)


@pytest.fixture
def packaged_chart(testbed: Testbed, tmp_path: Path) -> Path:
    """The chart as a release ships it: `helm package`, then `helm lint --strict` on the .tgz."""
    testbed.helm("package", str(REPO / "charts" / "gptoss-operator"), "-d", str(tmp_path))
    (package,) = tmp_path.glob("gptoss-operator-*.tgz")
    lint = testbed.helm("lint", "--strict", str(package))
    assert "0 chart(s) failed" in lint.stdout, lint.stdout
    return package


def _examples_in(namespace: str) -> list[dict[str, Any]]:
    docs = [yaml.safe_load(p.read_text()) for p in EXAMPLES]
    for doc in docs:
        doc["metadata"]["namespace"] = namespace
    return docs


def _what_the_120b_example_refers_to(testbed: Testbed, namespace: str) -> None:
    """Its API key Secret and its pre-filled weights claim (kwok's provisioner binds it)."""
    testbed.kubectl(
        "-n", namespace, "create", "secret", "generic", "gptoss-api-key",
        "--from-literal=api-key=" + os.urandom(16).hex(),
    )  # fmt: skip
    claim = {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": "gpt-oss-120b-weights"},
        "spec": {
            "accessModes": ["ReadWriteMany"],
            "resources": {"requests": {"storage": "200Gi"}},
        },
    }
    testbed.apply(namespace, claim)


@pytest.fixture
def work_namespace(testbed: Testbed) -> Iterator[str]:
    name = unique("image-work")
    testbed.kubectl("create", "namespace", name)
    yield name
    testbed.kubectl("delete", "namespace", name, "--wait=false", check=False)


def test_image_serves_the_examples_as_the_charts_service_account(
    testbed: Testbed,
    namespace: str,
    work_namespace: str,
    image: dict[str, str],
    packaged_chart: Path,
    tmp_path: Path,
) -> None:
    release = unique("gptoss-operator")
    user = sa_user(namespace, release)
    repository, tag = image["IMAGE"].rsplit(":", 1)
    restricted(testbed, namespace)
    testbed.helm(
        "install", release, str(packaged_chart), "-n", namespace, "--wait", "--timeout=120s",
        "--set", "crds.enabled=false", "--set", f"watchNamespaces={{{work_namespace}}}",
        "--set", f"image.repository={repository}", "--set", f"image.tag={tag}",
    )  # fmt: skip
    deployment = testbed.get("-n", namespace, "deployment", release)
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["image"] == image["IMAGE"]
    # The chart's arguments, but liveness and metrics on the host's loopback, free for this run.
    assert "--metrics-port=8081" in container["args"]
    args = [a for a in container["args"] if not a.startswith(("--liveness", "--metrics-port"))]
    assert args == [
        f"--namespace={work_namespace}",
        "--leader-elect",
        f"--lease={namespace}/{release}",
    ]

    env = pod_identity(testbed, namespace, release, tmp_path / "serviceaccount")
    log = testbed.state / "logs" / f"image-{release}.log"
    operator = ImageOperator(image["IMAGE"], tmp_path / "serviceaccount", env, args, log)
    fence_name = unique("image-fence")
    mark = testbed.audit_mark()
    try:
        fence(testbed, fence_name, work_namespace, user)
        operator.start()
        assert operator.operator_uids() == {UID}
        _what_the_120b_example_refers_to(testbed, work_namespace)
        for doc in _examples_in(work_namespace):
            testbed.apply(work_namespace, doc)
        ready = testbed.kubectl(
            "-n", work_namespace, "wait", "--for=condition=Ready",
            *(f"gptossdeployment/{n}" for n in NAMES), "--timeout=180s",
            check=False, timeout=200,
        )  # fmt: skip
        assert ready.returncode == 0, f"not Ready: {ready.stderr}\n{operator.log_tail()}"
        # The image carries the metrics dependency: /metrics answers, the leader leads.
        url = f"http://127.0.0.1:{operator.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as answer:
            assert "gptoss_operator_leader 1.0" in answer.read().decode()
        operator.stop()
        written = operator.changed_paths()
    finally:
        operator.stop()
        operator.remove()
        unfence(testbed, fence_name)
        testbed.helm("uninstall", release, "-n", namespace, "--wait", check=False)

    # Nothing changed but /tmp (the chart's emptyDir) and the mount point of the ServiceAccount
    # volume: the image runs on a read-only root filesystem, as the chart runs it.
    assert [p for p in written if not (p.startswith("/tmp") or SA_DIR.startswith(p))] == []
    ours = writes_by(testbed, mark, user)
    assert not rbac_denials(ours), rbac_denials(ours)
    done = {
        (e["verb"], e["objectRef"]["resource"], e["objectRef"].get("name"))
        for e in ours
        if e["objectRef"].get("namespace") == work_namespace and e["responseStatus"]["code"] < 300
    }
    for name in NAMES:
        assert ("patch", "deployments", name) in done, (name, sorted(done))
        assert ("patch", "gptossdeployments", name) in done, (name, sorted(done))
