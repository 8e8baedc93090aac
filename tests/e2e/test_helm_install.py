"""The Helm chart on a real control plane: lint, install under PodSecurity `restricted`, RBAC
that is enough (the operator, run as the chart's ServiceAccount, serves an example to Ready) and
not more (`kubectl auth can-i`), upgrade, and an uninstall that leaves nothing behind.

Two things make the shared test bed tricky, and are handled here on purpose:

* The CRD is already installed by the session fixture `gptoss_crd` (kubectl server-side apply).
  The cluster-wide release adopts it (Helm's ownership annotations) with `crds.keep=true`, so
  the install, upgrade and uninstall of the CRD template are real, and uninstalling keeps it for
  the other tests; afterwards the adoption is undone. Deleting a shared CRD (`crds.keep=false`)
  is checked offline (`helm template`) and against the apiserver with a server-side dry run.
* Another operator may be running cluster-wide in the same session (fixture `operator`, user
  `gptoss-operator`, in system:masters). A ValidatingAdmissionPolicy fences it out of the
  test's namespace, and fences the operator under test into it, so the object becomes Ready
  only through the writes of the chart's ServiceAccount; the audit log confirms who wrote.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from support.operator import OperatorProcess
from support.testbed import REPO, Testbed, wait_until

pytestmark = [pytest.mark.testbed, pytest.mark.usefixtures("gptoss_crd")]

CHART = REPO / "charts" / "gptoss-operator"
EXAMPLE = REPO / "manifests" / "examples" / "gptoss-20b.yaml"
CRD_NAME = "gptossdeployments.gptoss.dev"
CRD_FILE = REPO / "manifests" / "crds" / "gptossdeployments.yaml"
SESSION_OPERATOR = "gptoss-operator"  # the user of the `operator` fixture's kubeconfig
HELM_OWNERSHIP = ("meta.helm.sh/release-name", "meta.helm.sh/release-namespace")
CHART_LABELS = (
    "app.kubernetes.io/managed-by",
    "app.kubernetes.io/instance",
    "app.kubernetes.io/version",
    "helm.sh/chart",
)

# (verb, resource, namespaced): what the chart's ServiceAccount must never be allowed to do.
FORBIDDEN = [
    ("get", "secrets", True),
    ("list", "secrets", True),
    ("watch", "secrets", True),
    ("list", "secrets", False),
    ("get", "configmaps", True),
    ("update", "configmaps", True),
    ("delete", "persistentvolumeclaims", True),
    ("get", "persistentvolumeclaims", True),
    ("create", "pods", True),
    ("delete", "pods", True),
    ("create", "pods/exec", True),
    ("get", "pods/log", True),
    ("update", "jobs.batch", True),
    ("update", "gptossdeployments.gptoss.dev", True),
    ("patch", "gptossdeployments.gptoss.dev", True),
    ("delete", "gptossdeployments.gptoss.dev", True),
    ("create", "gptossdeployments.gptoss.dev", True),
    ("patch", "replicasets.apps", True),
    ("watch", "replicasets.apps", True),
    ("patch", "horizontalpodautoscalers.autoscaling", True),
    ("delete", "horizontalpodautoscalers.autoscaling", True),
    ("update", "scaledobjects.keda.sh", True),
    ("patch", "nodes", False),
    ("list", "nodes", False),
    ("list", "namespaces", False),
    ("create", "clusterroles.rbac.authorization.k8s.io", False),
    ("create", "rolebindings.rbac.authorization.k8s.io", True),
    ("impersonate", "users", False),
    ("create", "serviceaccounts/token", True),
    ("delete", "customresourcedefinitions.apiextensions.k8s.io", False),
    ("get", "customresourcedefinitions.apiextensions.k8s.io", False),
]
# What it must be allowed to do, from kube.py and handlers.py (checked in the watched namespace).
ALLOWED = [
    ("list", "gptossdeployments.gptoss.dev"),
    ("watch", "gptossdeployments.gptoss.dev"),
    ("patch", "gptossdeployments.gptoss.dev/status"),
    ("update", "gptossdeployments.gptoss.dev/finalizers"),
    *[
        (verb, kind)
        for kind in (
            "deployments.apps",
            "services",
            "persistentvolumeclaims",
            "podmonitors.monitoring.coreos.com",
        )
        for verb in ("list", "watch", "create", "patch")
    ],
    *[(verb, kind) for kind in ("deployments.apps", "services") for verb in ("update", "delete")],
    *[
        (verb, kind)
        for kind in (
            "poddisruptionbudgets.policy",
            "networkpolicies.networking.k8s.io",
            "podmonitors.monitoring.coreos.com",
            "scaledobjects.keda.sh",
            "configmaps",
            "jobs.batch",
        )
        for verb in ("list", "watch", "create", "patch", "delete")
    ],
    ("list", "horizontalpodautoscalers.autoscaling"),
    ("watch", "horizontalpodautoscalers.autoscaling"),
    ("list", "replicasets.apps"),
    ("list", "pods"),
    ("watch", "pods"),
    ("create", "events"),
]


# --- helpers ---------------------------------------------------------------------------------
def unique(stem: str) -> str:
    return f"{stem}-{uuid.uuid4().hex[:6]}"


def sa_user(release_ns: str, release: str) -> str:
    # The release names used here contain the chart's name, so the objects are named `release`.
    return f"system:serviceaccount:{release_ns}:{release}"


def service_account_kubeconfig(testbed: Testbed, namespace: str, account: str, path: Path) -> Path:
    """The admin kubeconfig with a token of the ServiceAccount instead of the admin's, i.e. what
    the operator's pod gets. Impersonation (`as:` in a kubeconfig) would be simpler, but the
    Python client ignores it and would quietly run as the admin."""
    token = testbed.kubectl(
        "-n", namespace, "create", "token", account, "--duration=30m"
    ).stdout.strip()
    config = yaml.safe_load(testbed.kubeconfig.read_text())
    for entry in config["users"]:
        entry["user"] = {"token": token}
    path.write_text(yaml.safe_dump(config))
    return path


def can_i(testbed: Testbed, user: str, verb: str, resource: str, namespace: str | None) -> bool:
    """A SubjectAccessReview for the ServiceAccount `user` (`resource[.group][/subresource]`):
    exact, and unlike `kubectl auth can-i` it needs no discovery of kinds the cluster lacks."""
    resource, _, subresource = resource.partition("/")
    plural, _, group = resource.partition(".")
    account_ns = user.split(":")[2]
    review = {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SubjectAccessReview",
        "spec": {
            "user": user,
            "groups": [
                "system:serviceaccounts",
                f"system:serviceaccounts:{account_ns}",
                "system:authenticated",
            ],
            "resourceAttributes": {
                "verb": verb,
                "group": group,
                "resource": plural,
                "subresource": subresource,
                "namespace": namespace or "",
            },
        },
    }
    answer = testbed.kubectl("create", "-o", "json", "-f", "-", input=json.dumps(review))
    return bool(json.loads(answer.stdout)["status"].get("allowed"))


def wildcard_rules(testbed: Testbed, user: str, namespace: str) -> list[str]:
    """Rows of `kubectl auth can-i --list` with `*` as a resource or a verb."""
    table = testbed.kubectl("auth", "can-i", "--list", f"--as={user}", "-n", namespace).stdout
    bad = []
    for row in table.splitlines()[1:]:
        verbs = re.findall(r"\[([^\]]*)\]\s*$", row)
        resource = row.split()[0] if row and not row[0].isspace() else ""
        if "*" in resource or (verbs and "*" in verbs[0]):
            bad.append(row)
    return bad


def example_in(namespace: str) -> str:
    """The 20b example with an API key, so the middleware ConfigMap is among the writes."""
    doc = yaml.safe_load(EXAMPLE.read_text())
    doc["metadata"]["namespace"] = namespace
    doc["spec"]["api"] = {"apiKeySecretRef": {"name": "llm-key", "key": "token"}}
    return json.dumps(doc)


def fence(testbed: Testbed, name: str, namespace: str, user: str) -> None:
    """Only `user` may write in `namespace`; `user` may write nowhere else. Other operators of
    the session are shut out of the namespace, the one under test out of everyone else's."""
    policy = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": name},
        "spec": {
            "failurePolicy": "Fail",
            "matchConstraints": {
                "resourceRules": [
                    {
                        "apiGroups": ["*"],
                        "apiVersions": ["*"],
                        "operations": ["CREATE", "UPDATE", "DELETE"],
                        "resources": ["*/*"],  # every resource and subresource
                    }
                ]
            },
            "matchConditions": [
                {
                    "name": "operators-only",
                    "expression": "request.userInfo.username in "
                    + json.dumps([user, SESSION_OPERATOR]),
                }
            ],
            "validations": [
                {
                    # The user's own leader Lease (in its release namespace) stays writable.
                    "expression": (
                        f"request.userInfo.username == {json.dumps(user)}"
                        f" ? (request.namespace == {json.dumps(namespace)}"
                        ' || request.resource.resource == "leases")'
                        f" : request.namespace != {json.dumps(namespace)}"
                    ),
                    "message": f"fenced by the Helm test {name}",
                }
            ],
        },
    }
    binding = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": name},
        "spec": {"policyName": name, "validationActions": ["Deny"]},
    }
    items = {"apiVersion": "v1", "kind": "List", "items": [policy, binding]}
    testbed.kubectl("apply", "-f", "-", input=json.dumps(items))

    def active() -> bool:
        probe = testbed.kubectl(
            "-n", namespace, "create", "configmap", "fence-probe", "--dry-run=server",
            f"--as={SESSION_OPERATOR}", "--as-group=system:masters", check=False,
        )  # fmt: skip
        return probe.returncode != 0 and name in probe.stderr

    wait_until(active, 30, f"the admission fence {name} to take effect")


def unfence(testbed: Testbed, name: str) -> None:
    testbed.kubectl(
        "delete", "validatingadmissionpolicybinding,validatingadmissionpolicy", name,
        "--ignore-not-found",
    )  # fmt: skip


def writes_by(testbed: Testbed, since: int, user: str) -> list[dict[str, Any]]:
    """The write requests `user` made since `since`, with its own token or impersonated."""
    return [
        e
        for e in testbed.audit_writes(since)
        if (e.get("impersonatedUser") or e.get("user", {})).get("username") == user
    ]


def rbac_denials(events: list[dict[str, Any]]) -> list[str]:
    return [
        f"{e['verb']} {e['objectRef'].get('resource')} {e['objectRef'].get('namespace')}"
        for e in events
        if e.get("annotations", {}).get("authorization.k8s.io/decision") == "forbid"
    ]


def release_objects(testbed: Testbed, release: str) -> list[str]:
    """Every operator object left of a release, found by its instance label, in any namespace."""
    selector = f"app.kubernetes.io/instance={release}"
    kinds = (
        "clusterroles,clusterrolebindings,roles,rolebindings,serviceaccounts,deployments,pods,"
        "poddisruptionbudgets"
    )
    return testbed.kubectl("get", kinds, "-A", "-l", selector, "-o", "name").stdout.split()


def operator_args(testbed: Testbed, namespace: str, release: str) -> list[str]:
    """The operator's arguments as the chart renders them, without its in-pod liveness URL."""
    deployment = testbed.get("-n", namespace, "deployment", release)
    args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    return [a for a in args if not a.startswith("--liveness")]


def reconcile_as_chart_identity(
    testbed: Testbed, release_ns: str, release: str, work_ns: str, tmp_path: Path
) -> None:
    """Run the operator as the release's ServiceAccount with the chart's arguments; the example
    in `work_ns` must become Ready through its writes alone, with no RBAC denial on the way."""
    user = sa_user(release_ns, release)
    kubeconfig = service_account_kubeconfig(testbed, release_ns, release, tmp_path / "kubeconfig")
    log = testbed.state / "logs" / f"helm-{release}.log"
    name = unique("helm-fence")
    operator = OperatorProcess(kubeconfig, log, *operator_args(testbed, release_ns, release))
    mark = testbed.audit_mark()
    testbed.kubectl(
        "-n", work_ns, "create", "secret", "generic", "llm-key", "--from-literal=token=sk-helm"
    )
    try:
        fence(testbed, name, work_ns, user)
        operator.start()
        testbed.kubectl("apply", "-f", "-", input=example_in(work_ns))
        ready = testbed.kubectl(
            "-n", work_ns, "wait", "--for=condition=Ready", "gptossdeployment/gptoss-20b",
            "--timeout=120s", check=False, timeout=150,
        )  # fmt: skip
        assert ready.returncode == 0, f"not Ready: {ready.stderr}\n{operator.log_tail()}"
    finally:
        operator.stop()
        unfence(testbed, name)
    ours = writes_by(testbed, mark, user)
    assert not rbac_denials(ours), rbac_denials(ours)
    assert f'User "{user}" cannot' not in log.read_text(errors="replace"), operator.log_tail()
    done = {
        (e["verb"], e["objectRef"]["resource"], e["objectRef"].get("subresource", ""))
        for e in ours
        if e["objectRef"].get("namespace") == work_ns and e["responseStatus"]["code"] < 300
    }
    assert {
        ("patch", "deployments", ""),
        ("patch", "services", ""),
        ("patch", "configmaps", ""),
        ("patch", "gptossdeployments", "status"),
    } <= done, done


@pytest.fixture
def adopted_crd(testbed: Testbed) -> Iterator[None]:
    """Let a release take over the session's CRD; give it back unchanged afterwards."""
    yield
    annotations = (*HELM_OWNERSHIP, "helm.sh/resource-policy")
    testbed.kubectl("annotate", "crd", CRD_NAME, *(f"{a}-" for a in annotations))
    testbed.kubectl("label", "crd", CRD_NAME, *(f"{label}-" for label in CHART_LABELS))
    testbed.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(CRD_FILE))


def adopt_crd(testbed: Testbed, release: str, namespace: str) -> None:
    testbed.kubectl(
        "annotate", "--overwrite", "crd", CRD_NAME,
        f"meta.helm.sh/release-name={release}", f"meta.helm.sh/release-namespace={namespace}",
    )  # fmt: skip
    testbed.kubectl("label", "--overwrite", "crd", CRD_NAME, "app.kubernetes.io/managed-by=Helm")


def restricted(testbed: Testbed, namespace: str) -> None:
    testbed.kubectl(
        "label", "--overwrite", "namespace", namespace,
        "pod-security.kubernetes.io/enforce=restricted",
    )  # fmt: skip


# --- tests -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "values",
    [
        [],
        ["--set", "watchNamespaces={team-a,team-b}", "--set", "crds.enabled=false"],
        [
            "--set", "deployments[0].name=gptoss-20b",
            "--set", "deployments[0].spec.model.name=gpt-oss-20b",
            "--set", "logLevel=debug", "--set", "image.digest=sha256:" + "0" * 64,
        ],
    ],
    ids=["defaults", "namespaced", "deployments"],
)  # fmt: skip
def test_chart_lints_clean(testbed: Testbed, values: list[str]) -> None:
    result = testbed.helm("lint", "--strict", str(CHART), *values)
    assert "0 chart(s) failed" in result.stdout, result.stdout


def test_schema_rejects_unknown_keys_and_wrong_types(testbed: Testbed) -> None:
    for bad, message in [
        (["--set", "bogus=1"], "additional properties 'bogus' not allowed"),
        (["--set", "image.tags=x"], "additional properties 'tags' not allowed"),
        (["--set", "crds.keep=maybe"], "got string, want boolean"),
        (["--set", "logLevel=trace"], "logLevel"),
        (["--set", "watchNamespaces=team-a"], "got string, want array"),
    ]:
        result = testbed.helm("template", "x", str(CHART), *bad, check=False)
        assert result.returncode != 0, bad
        assert message in result.stderr, result.stderr


def test_crd_template_keeps_and_is_accepted_by_the_apiserver(testbed: Testbed) -> None:
    def crd(*values: str) -> dict[str, Any]:
        out = testbed.helm(
            "template", "x", str(CHART), "--show-only", "templates/crd-gptossdeployments.yaml",
            *values,
        ).stdout  # fmt: skip
        return yaml.safe_load(out)  # type: ignore[no-any-return]

    kept, dropped = crd(), crd("--set", "crds.keep=false")
    assert kept["metadata"]["annotations"] == {"helm.sh/resource-policy": "keep"}
    assert "annotations" not in dropped["metadata"]
    assert kept["spec"] == yaml.safe_load(CRD_FILE.read_text())["spec"]
    missing = testbed.helm(
        "template", "x", str(CHART), "--show-only", "templates/crd-gptossdeployments.yaml",
        "--set", "crds.enabled=false", check=False,
    )  # fmt: skip
    assert missing.returncode != 0  # nothing rendered
    testbed.kubectl(
        "apply", "--server-side", "--dry-run=server", "--force-conflicts",
        "--field-manager=helm-test", "-f", "-", input=json.dumps(dropped),
    )  # fmt: skip


def test_apply_of_a_missing_object_is_authorized_as_create(testbed: Testbed, namespace: str):
    """Why the chart grants `create` next to `patch`: server-side apply creates missing objects,
    and the apiserver authorizes that as a create. Patching an existing object needs only patch."""
    user = f"system:serviceaccount:{namespace}:patcher"
    testbed.kubectl("-n", namespace, "create", "serviceaccount", "patcher")
    testbed.kubectl("-n", namespace, "create", "role", "patch", "--verb=patch", "--resource=cm")
    testbed.kubectl(
        "-n", namespace, "create", "rolebinding", "patch", "--role=patch",
        f"--serviceaccount={namespace}:patcher",
    )  # fmt: skip
    testbed.kubectl("-n", namespace, "create", "configmap", "present")

    def apply(name: str) -> Any:
        cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {}}
        return testbed.kubectl(
            "-n", namespace, "apply", "--server-side", f"--as={user}", "-f", "-",
            input=json.dumps(cm), check=False,
        )  # fmt: skip

    assert apply("present").returncode == 0
    missing = apply("missing")
    assert missing.returncode != 0
    assert "cannot create resource" in missing.stderr


def test_install_reconcile_upgrade_uninstall_cluster_wide(
    testbed: Testbed, namespace: str, adopted_crd: None, tmp_path: Path
) -> None:
    release = unique("gptoss-operator")
    user = sa_user(namespace, release)
    work = unique("helm-work")
    restricted(testbed, namespace)
    adopt_crd(testbed, release, namespace)
    testbed.kubectl("create", "namespace", work)
    try:
        testbed.helm("install", release, str(CHART), "-n", namespace, "--wait", "--timeout=120s")
        # Admitted under PodSecurity restricted, and Ready on a simulated node.
        pods = testbed.get("-n", namespace, "pods", "-l", f"app.kubernetes.io/instance={release}")
        # Two replicas by default: one leads, the other stands by.
        assert [p["status"]["phase"] for p in pods["items"]] == ["Running", "Running"]
        crd = testbed.get("crd", CRD_NAME)["metadata"]
        assert crd["annotations"]["helm.sh/resource-policy"] == "keep"
        assert crd["labels"]["app.kubernetes.io/instance"] == release
        assert testbed.get("clusterrolebinding", release)["subjects"] == [
            {"kind": "ServiceAccount", "name": release, "namespace": namespace}
        ]

        # Enough: the example becomes Ready through the ServiceAccount's writes only.
        reconcile_as_chart_identity(testbed, namespace, release, work, tmp_path)

        # Not more: each rule is used, nothing else is granted, and no wildcard anywhere.
        for verb, resource in ALLOWED:
            assert can_i(testbed, user, verb, resource, work), (verb, resource)
            if not resource.endswith(("events", "finalizers", "status")) and verb != "delete":
                assert can_i(testbed, user, verb, resource, None), (verb, resource, "cluster")
        for verb in ("list", "watch"):
            assert can_i(
                testbed, user, verb, "customresourcedefinitions.apiextensions.k8s.io", None
            )
        granted = [
            (v, r) for v, r, ns in FORBIDDEN if can_i(testbed, user, v, r, work if ns else None)
        ]
        assert granted == []
        assert wildcard_rules(testbed, user, work) == []

        # Upgrade with changed values: the Deployment follows.
        testbed.helm(
            "upgrade", release, str(CHART), "-n", namespace, "--reuse-values", "--wait",
            "--timeout=120s", "--set", "logLevel=debug", "--set", "resources.limits.memory=768Mi",
        )  # fmt: skip
        container = testbed.get("-n", namespace, "deployment", release)["spec"]["template"]["spec"][
            "containers"
        ][0]
        assert "--verbose" in container["args"]
        assert container["resources"]["limits"]["memory"] == "768Mi"
        assert testbed.get("crd", CRD_NAME)["metadata"]["labels"]["helm.sh/chart"]
    finally:
        testbed.helm("uninstall", release, "-n", namespace, "--wait", check=False)
        testbed.kubectl("delete", "namespace", work, "--wait=false", check=False)

    # The operator pods terminate after the uninstall returns.
    wait_until(lambda: release_objects(testbed, release) == [], 60, "nothing of the release")
    # crds.keep: the CRD, and every GptOssDeployment, outlive the release.
    assert testbed.get("crd", CRD_NAME)["metadata"]["annotations"]["helm.sh/resource-policy"]


def test_watch_namespaces_installs_roles_only_in_them(
    testbed: Testbed, namespace: str, tmp_path: Path
) -> None:
    release = unique("gptoss-operator")
    user = sa_user(namespace, release)
    work = unique("helm-work")
    restricted(testbed, namespace)
    testbed.kubectl("create", "namespace", work)
    try:
        testbed.helm(
            "install", release, str(CHART), "-n", namespace, "--wait", "--timeout=120s",
            "--set", "crds.enabled=false", "--set", f"watchNamespaces={{{work}}}",
        )  # fmt: skip
        assert operator_args(testbed, namespace, release) == [
            f"--namespace={work}",
            "--metrics-port=8081",
            "--leader-elect",
            f"--lease={namespace}/{release}",
        ]
        assert testbed.get("-n", work, "rolebinding", release)["roleRef"]["kind"] == "Role"
        # Cluster-wide only what Kopf needs to follow kinds and the watched namespaces.
        assert testbed.get("clusterrole", release)["rules"] == [
            {
                "apiGroups": ["apiextensions.k8s.io"],
                "resources": ["customresourcedefinitions"],
                "verbs": ["list", "watch"],
            },
            {"apiGroups": [""], "resources": ["namespaces"], "verbs": ["get", "list", "watch"]},
        ]

        reconcile_as_chart_identity(testbed, namespace, release, work, tmp_path)

        assert can_i(testbed, user, "list", "gptossdeployments.gptoss.dev", work)
        assert not can_i(testbed, user, "list", "gptossdeployments.gptoss.dev", None)
        assert not can_i(testbed, user, "patch", "deployments.apps", "default")
        assert wildcard_rules(testbed, user, work) == []
    finally:
        testbed.helm("uninstall", release, "-n", namespace, "--wait", check=False)
        testbed.kubectl("delete", "namespace", work, "--wait=false", check=False)
    # The operator pods terminate after the uninstall returns.
    wait_until(lambda: release_objects(testbed, release) == [], 60, "nothing of the release")
