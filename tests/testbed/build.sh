#!/usr/bin/env bash
# Build the test bed's binaries from the Go module proxy, through the committed wrapper modules
# in gomod/. Each tool lands in $TESTBED_CACHE/bin/<tool>-<version>-<go version>/ with a
# .complete marker written last, so a second run is a no-op. Prints the directories as
# KEY=DIR lines (K8S_BIN, ... KEDA_BIN, PROMQL_BIN, PROMETHEUS_BIN) on stdout; progress goes to stderr.
#
#   build.sh [kubernetes|etcd|kwok|helm|keda|promql|prometheus|all]
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=versions.env
. "$HERE/versions.env"
export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-modcacherw
CACHE="${TESTBED_CACHE:-$HOME/.cache/gptoss-testbed}"
GOVERSION="$(go env GOVERSION)"

out_dir() { echo "$CACHE/bin/$1-$2-$GOVERSION"; }

# build TOOL VERSION LDFLAGS PACKAGE... : go build every package into the tool's cache dir.
build() {
  local tool="$1" version="$2" ldflags="$3"; shift 3
  local out; out="$(out_dir "$tool" "$version")"
  [ -f "$out/.complete" ] && return 0
  echo "building $tool $version with $GOVERSION (cold builds take minutes)" >&2
  rm -rf "$out.tmp"; mkdir -p "$out.tmp"
  local start=$SECONDS
  (cd "$HERE/gomod/$tool" && go build -trimpath -ldflags "-s -w $ldflags" -o "$out.tmp/" "$@")
  echo "built $tool in $((SECONDS - start))s" >&2
  rm -rf "$out"; mv "$out.tmp" "$out"; touch "$out/.complete"
}

kubernetes() {
  # Stamp the version the way hack/lib/version.sh does; unstamped binaries report v0.0.0 and
  # helm's kubeVersion checks and kubectl's skew warnings would misread the cluster.
  local minor="${K8S_VERSION#v1.}" ldf=""
  minor="${minor%%.*}"
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldf+=" -X $p.gitVersion=$K8S_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$minor -X $p.gitTreeState=clean"
  done
  build kubernetes "$K8S_VERSION" "$ldf" k8s.io/kubernetes/cmd/kube-apiserver \
    k8s.io/kubernetes/cmd/kube-controller-manager k8s.io/kubernetes/cmd/kube-scheduler \
    k8s.io/kubernetes/cmd/kubectl
}

etcd() {
  local out; out="$(out_dir etcd "$ETCD_VERSION")"
  [ -f "$out/.complete" ] && return 0
  # The etcd server's main package is its module root, so name the outputs explicitly.
  build etcd "$ETCD_VERSION" "" go.etcd.io/etcd/etcdctl/v3
  rm "$out/.complete"
  (cd "$HERE/gomod/etcd" && go build -trimpath -ldflags "-s -w" -o "$out/etcd" go.etcd.io/etcd/server/v3)
  touch "$out/.complete"
}

kwok() {
  build kwok "$KWOK_VERSION" "" sigs.k8s.io/kwok/cmd/kwok
  # kwok v0.8 has no built-in stages: keep its upstream stage files (node lifecycle, pod delete
  # and complete, and the volume provisioner that binds claims of the kwok-volume class) beside
  # the binary, so up.sh does not depend on the module cache.
  local out; out="$(out_dir kwok "$KWOK_VERSION")"
  if [ ! -f "$out/stages/.complete" ]; then
    local src
    src="$(cd "$HERE/gomod/kwok" && go list -m -f '{{.Dir}}' sigs.k8s.io/kwok)/kustomize/stage"
    rm -rf "$out/stages.tmp"; mkdir -p "$out/stages.tmp"
    cp "$src/node/fast/node-initialize.yaml" "$src/node/heartbeat-with-lease/node-heartbeat-with-lease.yaml" \
      "$src/pod/fast/pod-complete.yaml" "$src/pod/fast/pod-delete.yaml" \
      "$src"/volume/fast/{pv-bind,pv-delete,pvc-provision,pvc-delete}.yaml "$out/stages.tmp/"
    cp "$src/volume/fast/storage-class.yaml" "$out/storage-class.yaml.tmp"
    chmod u+w "$out/stages.tmp"/* "$out/storage-class.yaml.tmp"
    touch "$out/stages.tmp/.complete"
    rm -rf "$out/stages"; mv "$out/stages.tmp" "$out/stages"
    mv "$out/storage-class.yaml.tmp" "$out/storage-class.yaml"
  fi
}

helm() {
  # Helm v3 takes its version and default Kubernetes capabilities from ldflags only (its
  # Makefile derives the latter from the client-go it builds with).
  local cg minor p=helm.sh/helm/v3
  cg="$(awk '$1=="k8s.io/client-go"{print $2}' "$HERE/gomod/helm/go.mod")"
  minor="${cg#v0.}"; minor="${minor%%.*}"
  build helm "$HELM_VERSION" "-X $p/internal/version.version=$HELM_VERSION \
    -X $p/internal/version.gitTreeState=clean \
    -X $p/pkg/chartutil.k8sVersionMajor=1 -X $p/pkg/chartutil.k8sVersionMinor=$minor \
    -X $p/pkg/lint/rules.k8sVersionMajor=1 -X $p/pkg/lint/rules.k8sVersionMinor=$minor" \
    helm.sh/helm/v3/cmd/helm
}

keda() {
  # KEDA's operator and its metrics apiserver (external.metrics.k8s.io). Both main packages are
  # named by directory (operator, adapter): build them one by one under KEDA's own names.
  local out v=github.com/kedacore/keda/v2/version; out="$(out_dir keda "$KEDA_VERSION")"
  if [ ! -f "$out/.complete" ]; then
    echo "building keda $KEDA_VERSION with $GOVERSION (a cold build takes about 11 minutes)" >&2
    rm -rf "$out.tmp"; mkdir -p "$out.tmp"
    local start=$SECONDS ldf="-s -w -X $v.Version=$KEDA_VERSION -X $v.GitCommit=$KEDA_VERSION"
    (cd "$HERE/gomod/keda" \
      && go build -trimpath -ldflags "$ldf" -o "$out.tmp/keda" github.com/kedacore/keda/v2/cmd/operator \
      && go build -trimpath -ldflags "$ldf" -o "$out.tmp/keda-adapter" github.com/kedacore/keda/v2/cmd/adapter)
    echo "built keda in $((SECONDS - start))s" >&2
    rm -rf "$out"; mv "$out.tmp" "$out"; touch "$out/.complete"
  fi
  # Its CRDs come from the same module zip (every one: KEDA's operator stops when a kind it
  # watches, such as eventing.keda.sh's CloudEventSource, is missing); kept beside the binaries
  # like kwok's stages, so tests do not depend on the module cache.
  if [ ! -f "$out/crds/.complete" ]; then
    local src
    src="$(cd "$HERE/gomod/keda" && go list -m -f '{{.Dir}}' github.com/kedacore/keda/v2)"
    rm -rf "$out/crds.tmp"; mkdir -p "$out/crds.tmp"
    cp "$src"/config/crd/bases/*.yaml "$out/crds.tmp/"; chmod u+w "$out/crds.tmp"/*
    touch "$out/crds.tmp/.complete"
    rm -rf "$out/crds"; mv "$out/crds.tmp" "$out/crds"
  fi
}

promql() {
  # Prometheus' own PromQL parser behind a command of ours (gomod/promql/main.go), which checks
  # the queries of the dashboard, the alerts and the autoscaler (tests/e2e/test_promql.py).
  build promql "$PROMETHEUS_VERSION" "" .
}

prometheus() {
  # The real Prometheus between KEDA and vLLM's metric names in the autoscaling test. Without
  # its service-discovery plugins (remove_all_sd: static targets only), which pull in every
  # cloud SDK; without the web UI's assets (the API needs none).
  local p=github.com/prometheus/common/version
  build prometheus "$PROMETHEUS_VERSION" "-X $p.Version=$PROMETHEUS_RELEASE -X $p.Branch=release" \
    -tags remove_all_sd github.com/prometheus/prometheus/cmd/prometheus
}

case "${1:-all}" in
  kubernetes|etcd|kwok|helm|keda|promql|prometheus) "$1" ;;
  all) kubernetes; etcd; kwok; helm; keda; promql; prometheus ;;
  *) echo "usage: $0 [kubernetes|etcd|kwok|helm|keda|promql|prometheus|all]" >&2; exit 2 ;;
esac
echo "K8S_BIN=$(out_dir kubernetes "$K8S_VERSION")"
echo "ETCD_BIN=$(out_dir etcd "$ETCD_VERSION")"
echo "KWOK_BIN=$(out_dir kwok "$KWOK_VERSION")"
echo "HELM_BIN=$(out_dir helm "$HELM_VERSION")"
echo "KEDA_BIN=$(out_dir keda "$KEDA_VERSION")"
echo "PROMQL_BIN=$(out_dir promql "$PROMETHEUS_VERSION")"
echo "PROMETHEUS_BIN=$(out_dir prometheus "$PROMETHEUS_VERSION")"
