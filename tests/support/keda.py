"""KEDA on the test bed, for the autoscaling tests: its CRDs, its operator and its metrics
apiserver (the real binaries, built by tests/testbed/build.sh keda), registered as the
external.metrics.k8s.io APIService through the apiserver's aggregation layer (up.sh configures
the front proxy). Started once and reused; tests/testbed/down.sh stops it with the test bed.

There is no kube-proxy and no pod network here, so KEDA runs as local processes: the
APIService names a Service of type ExternalName pointing at localhost, which the aggregator
resolves to localhost:<port> (Endpoints may not hold loopback addresses, so endpoint routing,
--enable-aggregator-routing, is not used).
"""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
from pathlib import Path

from support import process
from support.testbed import Testbed, wait_until

NAMESPACE = "keda"
SERVICE = "keda-metrics-apiserver"
APISERVICE = "v1beta1.external.metrics.k8s.io"
CRDS = (
    "scaledobjects.keda.sh",
    "triggerauthentications.keda.sh",
    "cloudeventsources.eventing.keda.sh",
)


def _alive(pidfile: Path) -> bool:
    try:
        os.kill(int(pidfile.read_text()), 0)
    except (OSError, ValueError):
        return False
    return True


class Keda:
    """The test bed's KEDA: `start()` is idempotent."""

    def __init__(self, testbed: Testbed) -> None:
        self.testbed = testbed
        self.bin = testbed.bins["KEDA_BIN"]
        self.dir = testbed.state / "keda"
        self.pids = testbed.state / "pids"
        self.logs = testbed.state / "logs"

    def install_crds(self) -> None:
        for crd in sorted((self.bin / "crds").glob("*.yaml")):
            self.testbed.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(crd))
        self.testbed.kubectl(
            "wait", "--for=condition=Established", *(f"crd/{c}" for c in CRDS), "--timeout=60s"
        )

    def start(self) -> None:
        self.install_crds()
        if all(_alive(self.pids / f"{c}.pid") for c in ("keda", "keda-adapter")):
            self._wait_available()
            return
        self._stop()  # one of the two died: start both again
        self.dir.mkdir(parents=True, exist_ok=True)
        certs = self._certs()
        grpc, adapter = process.free_port(), process.free_port()
        kubeconfig = str(self.testbed.kubeconfig)
        env = {
            **os.environ,
            "KUBECONFIG": kubeconfig,
            "WATCH_NAMESPACE": "",
            "POD_NAMESPACE": NAMESPACE,
            "KEDA_CLUSTER_OBJECT_NAMESPACE": NAMESPACE,
        }
        self.testbed.kubectl("create", "namespace", NAMESPACE, check=False)
        self._launch(
            "keda",
            [
                str(self.bin / "keda"),
                "--leader-elect=false",
                f"--metrics-bind-address=127.0.0.1:{process.free_port()}",
                f"--health-probe-bind-address=127.0.0.1:{process.free_port()}",
                f"--metrics-service-bind-address=127.0.0.1:{grpc}",
                f"--cert-dir={certs}",
                f"--ca-dir={certs}",
                "--zap-log-level=info",
            ],
            env,
        )
        self._launch(
            "keda-adapter",
            [
                str(self.bin / "keda-adapter"),
                f"--secure-port={adapter}",
                "--bind-address=127.0.0.1",
                f"--cert-dir={certs}",
                f"--tls-cert-file={certs / 'tls.crt'}",
                f"--tls-private-key-file={certs / 'tls.key'}",
                f"--lister-kubeconfig={kubeconfig}",
                f"--authentication-kubeconfig={kubeconfig}",
                f"--authorization-kubeconfig={kubeconfig}",
                f"--metrics-service-address=127.0.0.1:{grpc}",
                f"--port={process.free_port()}",
            ],
            env,
        )
        self._register(adapter, certs / "ca.crt")
        self._wait_available()

    def _stop(self) -> None:
        for name in ("keda", "keda-adapter"):
            pidfile = self.pids / f"{name}.pid"
            if _alive(pidfile):
                os.kill(int(pidfile.read_text()), signal.SIGTERM)
                wait_until(lambda p=pidfile: not _alive(p), 30, f"{name} to stop")  # type: ignore[misc]

    def _launch(self, name: str, argv: list[str], env: dict[str, str]) -> None:
        self.logs.mkdir(parents=True, exist_ok=True)
        with (self.logs / f"{name}.log").open("ab") as log:
            proc = subprocess.Popen(
                argv, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
            )
        (self.pids / f"{name}.pid").write_text(str(proc.pid))

    def _certs(self) -> Path:
        """A serving and client certificate signed by the test bed's CA: the metrics apiserver
        serves with it, and the operator's gRPC metrics service and the adapter authenticate
        each other with it (KEDA's mutual TLS, its cert rotation off)."""
        certs = self.dir / "certs"
        certs.mkdir(parents=True, exist_ok=True)
        pki = self.testbed.state / "pki"
        (certs / "ca.crt").write_bytes((pki / "ca.crt").read_bytes())
        san = certs / "san.ext"
        san.write_text(
            "subjectAltName=IP:127.0.0.1,DNS:localhost,"
            f"DNS:{SERVICE}.{NAMESPACE}.svc,DNS:{SERVICE}.{NAMESPACE}.svc.cluster.local,"
            f"DNS:keda-operator.{NAMESPACE}.svc.cluster.local\n"
        )
        ca, key = str(pki / "ca.crt"), str(pki / "ca.key")
        for argv in (
            "openssl req -newkey rsa:2048 -nodes -keyout tls.key -out tls.csr -subj /CN=keda",
            f"openssl x509 -req -in tls.csr -CA {ca} -CAkey {key} -CAcreateserial -CAserial ca.srl "
            "-days 365 -extfile san.ext -out tls.crt",
        ):
            subprocess.run(argv.split(), cwd=certs, check=True, capture_output=True)
        return certs

    def _register(self, port: int, ca: Path) -> None:
        """The APIService and the ExternalName Service behind it."""
        self.testbed.apply(
            NAMESPACE,
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": SERVICE},
                "spec": {"type": "ExternalName", "externalName": "localhost"},
            },
        )
        manifest = {
            "apiVersion": "apiregistration.k8s.io/v1",
            "kind": "APIService",
            "metadata": {"name": APISERVICE},
            "spec": {
                "group": "external.metrics.k8s.io",
                "version": "v1beta1",
                "groupPriorityMinimum": 100,
                "versionPriority": 100,
                "service": {"namespace": NAMESPACE, "name": SERVICE, "port": port},
                "caBundle": base64.b64encode(ca.read_bytes()).decode(),
            },
        }
        self.testbed.kubectl("apply", "-f", "-", input=json.dumps(manifest))

    def _wait_available(self) -> None:
        def available() -> bool:
            for name in ("keda", "keda-adapter"):
                if not _alive(self.pids / f"{name}.pid"):
                    tail = (self.logs / f"{name}.log").read_text(errors="replace")[-3000:]
                    raise AssertionError(f"{name} exited: {tail}")
            got = self.testbed.kubectl(
                "get", "--raw", "/apis/external.metrics.k8s.io/v1beta1", check=False
            )
            return got.returncode == 0

        wait_until(available, 120, "KEDA's metrics apiserver behind the aggregation layer", 1.0)
