"""credentials.py: the identity read from a pod's ServiceAccount or a kubeconfig, as kubectl
and client-go read it (the e2e suite logs in through it for every operator run)."""

from __future__ import annotations

import base64
import datetime
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from gptoss_operator import credentials

PEM = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"


def kubeconfig(
    path: Path, user: dict[str, Any], cluster: dict[str, Any] | None = None, **context: Any
) -> Path:
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "current-context": "c",
                "contexts": [{"name": "c", "context": {"cluster": "k", "user": "u", **context}}],
                "clusters": [{"name": "k", "cluster": cluster or {"server": "https://k:6443"}}],
                "users": [{"name": "u", "user": user}],
            }
        )
    )
    return path


def test_token_and_ca_data(tmp_path: Path) -> None:
    ca = base64.b64encode(PEM.encode()).decode()
    path = kubeconfig(
        tmp_path / "config",
        {"token": "t0k"},
        {"server": "https://k:6443", "certificate-authority-data": ca},
        namespace="team",
    )
    info = credentials.from_kubeconfig(str(path))
    assert info.server == "https://k:6443"
    assert info.as_http_headers() == {"Authorization": "Bearer t0k"}
    assert info.ca_data == ca
    assert info.default_namespace == "team"


def test_file_references_are_relative_to_their_kubeconfig(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("from-file\n")
    path = kubeconfig(
        tmp_path / "config",
        {"tokenFile": "token", "client-certificate": "u.crt", "client-key": "/abs/u.key"},
        {"server": "https://k", "certificate-authority": "pki/ca.crt"},
    )
    info = credentials.from_kubeconfig(str(path))
    assert info.token == "from-file"
    assert info.ca_path == str(tmp_path / "pki" / "ca.crt")
    assert info.certificate_path == str(tmp_path / "u.crt")
    assert info.private_key_path == "/abs/u.key"


def test_merged_files_first_entry_wins(tmp_path: Path) -> None:
    first = kubeconfig(tmp_path / "a", {"token": "first"})
    second = kubeconfig(tmp_path / "b", {"token": "second"}, {"server": "https://other"})
    absent = tmp_path / "absent"
    info = credentials.from_kubeconfig(os.pathsep.join(map(str, [absent, first, second])))
    assert (info.token, info.server) == ("first", "https://k:6443")


def test_exec_plugin_token_and_expiry(tmp_path: Path) -> None:
    """A kubeconfig exec plugin (GKE, EKS, AKS, OIDC login) runs with KUBERNETES_EXEC_INFO and
    its env; its token and expiry are used."""
    plugin = tmp_path / "plugin.py"
    plugin.write_text(
        "import json, os\n"
        "info = json.loads(os.environ['KUBERNETES_EXEC_INFO'])\n"
        "print(json.dumps({'apiVersion': info['apiVersion'], 'kind': 'ExecCredential',\n"
        "  'status': {'token': os.environ['PREFIX'] + '-issued',\n"
        "             'expirationTimestamp': '2030-01-02T03:04:05Z'}}))\n"
    )
    exec_ = {
        "apiVersion": "client.authentication.k8s.io/v1",
        "command": sys.executable,
        "args": [str(plugin)],
        "env": [{"name": "PREFIX", "value": "gke"}],
    }
    info = credentials.from_kubeconfig(str(kubeconfig(tmp_path / "config", {"exec": exec_})))
    assert info.token == "gke-issued"
    assert info.expiration == datetime.datetime(2030, 1, 2, 3, 4, 5, tzinfo=datetime.UTC)


def test_exec_plugin_failure_is_a_clear_error(tmp_path: Path) -> None:
    exec_ = {"apiVersion": "client.authentication.k8s.io/v1", "command": "/bin/false"}
    path = kubeconfig(tmp_path / "config", {"exec": exec_})
    with pytest.raises(credentials.CredentialsError, match="exec plugin '/bin/false' failed"):
        credentials.from_kubeconfig(str(path))


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"current-context": "missing", "contexts": []}, "no current context"),
        (
            {"current-context": "c", "contexts": [{"name": "c", "context": {"cluster": "x"}}]},
            "names no cluster with a server",
        ),
    ],
)
def test_unusable_kubeconfig(tmp_path: Path, config: dict[str, Any], message: str) -> None:
    path = tmp_path / "config"
    path.write_text(json.dumps(config))
    with pytest.raises(credentials.CredentialsError, match=message):
        credentials.from_kubeconfig(str(path))


def test_in_cluster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A pod: the service's address from the environment (IPv6 in brackets), the token and CA
    from the ServiceAccount volume, read afresh on every login (projected tokens rotate)."""
    (tmp_path / "token").write_text("sa-1\n")
    (tmp_path / "ca.crt").write_text(PEM)
    (tmp_path / "namespace").write_text("gptoss-system")
    monkeypatch.setattr(credentials, "SERVICE_ACCOUNT", tmp_path)
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "fd00::1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "443")
    info = credentials.connection()
    assert (info.server, info.token, info.default_namespace) == (
        "https://[fd00::1]:443",
        "sa-1",
        "gptoss-system",
    )
    (tmp_path / "token").write_text("sa-2\n")
    assert credentials.connection().token == "sa-2"


def test_the_operator_runs_without_the_kubernetes_package() -> None:
    """The image does not install the official client; nothing the operator imports needs it,
    and Kopf is kept from importing it in a dev environment (cli._run)."""
    code = (
        "import sys; sys.modules.setdefault('kubernetes', None)\n"
        "import gptoss_operator.operator_main\n"
        "print(sorted(m for m in sys.modules if m.startswith('kubernetes') and sys.modules[m]))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip() == "[]"
