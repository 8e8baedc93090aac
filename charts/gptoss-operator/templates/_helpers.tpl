{{/* Name of the chart, or nameOverride. */}}
{{- define "gptoss-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full name of the objects: fullnameOverride, else the release name (+ chart name). */}}
{{- define "gptoss-operator.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* Labels on every object. */}}
{{- define "gptoss-operator.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "gptoss-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* Labels that select the operator pod (immutable once installed). */}}
{{- define "gptoss-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "gptoss-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* The ServiceAccount the operator runs as. */}}
{{- define "gptoss-operator.serviceAccountName" -}}
{{- default (include "gptoss-operator.fullname" .) .Values.serviceAccount.name }}
{{- end }}

{{/* The operator image: repository@digest, else repository:tag (default: appVersion). */}}
{{- define "gptoss-operator.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/*
The operator's permissions in one namespace, or cluster-wide: exactly the verbs it uses
(operator/gptoss_operator/kube.py and handlers.py), no wildcards, no Secrets.
Children are written with server-side apply: PATCH, plus create because an apply that creates
the object is also authorized as a create. Deployments and Services are never deleted (garbage
collection does it through their owner references); PDBs and NetworkPolicies are pruned when the
spec turns them off. Model-cache PVCs and PodMonitors are applied and watched, never deleted
(a claim holds the weights). A PodMonitor watch on a cluster without the Prometheus Operator
CRDs is skipped by Kopf with a warning.
*/}}
{{- define "gptoss-operator.rules" -}}
# Namespaced rules: in the ClusterRole by default, in a Role per namespace with watchNamespaces.
- apiGroups: ["gptoss.dev"]
  resources: ["gptossdeployments"]
  verbs: ["list", "watch"]
- apiGroups: ["gptoss.dev"]
  resources: ["gptossdeployments/status"]
  verbs: ["patch"]
# Owner references with blockOwnerDeletion need update on the owner's finalizers where the
# OwnerReferencesPermissionEnforcement admission plugin is on (e.g. OpenShift).
- apiGroups: ["gptoss.dev"]
  resources: ["gptossdeployments/finalizers"]
  verbs: ["update"]
# update and delete: a child another client edited so that an apply cannot merge over it (a
# changed Service port, a Deployment selector) is replaced, or deleted and created again.
- apiGroups: ["apps"]
  resources: ["deployments"]
  verbs: ["list", "watch", "create", "patch", "update", "delete"]
- apiGroups: [""]
  resources: ["services"]
  verbs: ["list", "watch", "create", "patch", "update", "delete"]
- apiGroups: ["policy"]
  resources: ["poddisruptionbudgets"]
  verbs: ["list", "watch", "create", "patch", "delete"]
- apiGroups: ["networking.k8s.io"]
  resources: ["networkpolicies"]
  verbs: ["list", "watch", "create", "patch", "delete"]
# The API-key middleware's code (never the key), pruned when the key is removed.
- apiGroups: [""]
  resources: ["configmaps"]
  verbs: ["list", "watch", "create", "patch", "delete"]
- apiGroups: [""]
  resources: ["persistentvolumeclaims"]
  verbs: ["list", "watch", "create", "patch"]
# The download Job that fills the model cache before GPU pods start (docs/weights.md): created,
# never patched in practice (its template is immutable; patch is what server-side apply needs),
# deleted when stale or of an old revision. Its progress is read from the watch: no pods/log.
- apiGroups: ["batch"]
  resources: ["jobs"]
  verbs: ["list", "watch", "create", "patch", "delete"]
- apiGroups: ["monitoring.coreos.com"]
  resources: ["podmonitors"]
  verbs: ["list", "watch", "create", "patch", "delete"]
# spec.autoscaling: the KEDA ScaledObject (pruned when autoscaling is turned off; skipped, and
# reported in status, where KEDA is not installed), and the HPA KEDA creates from it, read
# for status.autoscaler (never written: KEDA owns it).
- apiGroups: ["keda.sh"]
  resources: ["scaledobjects"]
  verbs: ["list", "watch", "create", "patch", "delete"]
- apiGroups: ["autoscaling"]
  resources: ["horizontalpodautoscalers"]
  verbs: ["list", "watch"]
# The last available pod template, listed when an automatic rollback needs it.
- apiGroups: ["apps"]
  resources: ["replicasets"]
  verbs: ["list"]
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["list", "watch"]
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create"]
{{- end }}

{{/*
Cluster-scoped rules, found on the test bed (Kopf retries, then fails, on a 403):
Kopf's resource observer lists and watches CRDs in both modes, to notice kinds that appear
after it started; with a namespace list it also lists and watches namespaces, to follow them
being created and deleted. Cluster-wide it never reads namespaces.
*/}}
{{- define "gptoss-operator.clusterRules" -}}
- apiGroups: ["apiextensions.k8s.io"]
  resources: ["customresourcedefinitions"]
  verbs: ["list", "watch"]
# get: before re-creating a deleted child, whether its namespace is being deleted (no writes
# that would only be refused).
- apiGroups: [""]
  resources: ["namespaces"]
  verbs: ["get"{{ if .Values.watchNamespaces }}, "list", "watch"{{ end }}]
{{- end }}
