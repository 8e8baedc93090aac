#!/usr/bin/env bash
# Start the test bed: etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok on
# 127.0.0.1 with free ports, plus the simulated GPU nodes. Writes an admin kubeconfig to
# $TESTBED_DIR/kubeconfig (default .testbed/ in the repo). Idempotent: a running test bed is reused.
# Component logs and the apiserver's audit log of every write land in $TESTBED_DIR/logs/.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
STATE="${TESTBED_DIR:-$REPO/.testbed}"
KC="$STATE/kubeconfig"
eval "$(bash "$HERE/build.sh" all)"   # no-op when cached; sets K8S_BIN ETCD_BIN KWOK_BIN HELM_BIN
K=("$K8S_BIN/kubectl" --kubeconfig "$KC")

if [ -f "$KC" ] && "${K[@]}" get --raw=/readyz >/dev/null 2>&1; then
  echo "test bed already up: KUBECONFIG=$KC"; exit 0
fi
if [ -d "$STATE/pids" ] && ls "$STATE/pids"/*.pid >/dev/null 2>&1; then
  bash "$HERE/down.sh"   # half-started or dead test bed: clean it out first
fi
START=$SECONDS
mkdir -p "$STATE"/{logs,pids,pki}
cd "$STATE"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
ETCD_PORT=$(free_port); ETCD_PEER_PORT=$(free_port); API_PORT=$(free_port)
KCM_PORT=$(free_port); SCHED_PORT=$(free_port)

# fail COMPONENT MESSAGE: say what did not come up, with the tail of its log, and stop what started.
fail() {
  echo "test bed: $1 $2; last lines of logs/$1.log:" >&2
  tail -n 40 "logs/$1.log" >&2 || true
  bash "$HERE/down.sh" --keep-logs >&2 || true
  exit 1
}
# Any other failing step: stop whatever already started, keep the logs.
trap 'echo "test bed: start-up failed at line $LINENO" >&2; bash "$HERE/down.sh" --keep-logs' ERR
# wait_for COMPONENT SECONDS CMD...: poll CMD until it succeeds, the process dies, or time is up.
wait_for() {
  local comp="$1" deadline=$((SECONDS + $2)); shift 2
  until "$@" >/dev/null 2>&1; do
    kill -0 "$(cat "pids/$comp.pid")" 2>/dev/null || fail "$comp" "exited"
    [ $SECONDS -lt $deadline ] || fail "$comp" "was not ready within the timeout"
    sleep 0.3
  done
}
# launch COMPONENT CMD...: start in the background, log to logs/, remember the pid.
launch() {
  local comp="$1"; shift
  nohup "$@" >"logs/$comp.log" 2>&1 &
  echo $! >"pids/$comp.pid"
}

# --- PKI and credentials -----------------------------------------------------------------
openssl req -x509 -newkey rsa:2048 -nodes -keyout pki/ca.key -out pki/ca.crt -days 3650 \
  -subj "/CN=gptoss-testbed-ca" 2>/dev/null
openssl req -newkey rsa:2048 -nodes -keyout pki/apiserver.key -out pki/apiserver.csr \
  -subj "/CN=kube-apiserver" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1,IP:10.96.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local\n' >pki/san.ext
openssl x509 -req -in pki/apiserver.csr -CA pki/ca.crt -CAkey pki/ca.key -CAcreateserial \
  -days 3650 -extfile pki/san.ext -out pki/apiserver.crt 2>/dev/null
# The aggregation layer (external.metrics.k8s.io for KEDA's metrics server): a front-proxy CA
# the apiserver signs its proxied requests' client certificate with, and that certificate.
openssl req -x509 -newkey rsa:2048 -nodes -keyout pki/front-proxy-ca.key -out pki/front-proxy-ca.crt \
  -days 3650 -subj "/CN=gptoss-testbed-front-proxy-ca" 2>/dev/null
openssl req -newkey rsa:2048 -nodes -keyout pki/front-proxy-client.key -out pki/front-proxy-client.csr \
  -subj "/CN=front-proxy-client" 2>/dev/null
openssl x509 -req -in pki/front-proxy-client.csr -CA pki/front-proxy-ca.crt \
  -CAkey pki/front-proxy-ca.key -CAcreateserial -days 3650 -out pki/front-proxy-client.crt 2>/dev/null
openssl genrsa -out pki/sa.key 2048 2>/dev/null
openssl rsa -in pki/sa.key -pubout -out pki/sa.pub 2>/dev/null
# Two identities: the admin that tests act as, and one the operator runs as in tests, so the
# audit log tells the operator's writes apart from everybody else's.
write_kubeconfig() {  # FILE USER TOKEN
  (umask 077; cat >"$1" <<KUBECONFIG
apiVersion: v1
kind: Config
clusters:
- name: testbed
  cluster: {server: "https://127.0.0.1:$API_PORT", certificate-authority: "$STATE/pki/ca.crt"}
users:
- name: $2
  user: {token: "$3"}
contexts:
- name: testbed
  context: {cluster: testbed, user: $2}
current-context: testbed
KUBECONFIG
  )
}
ADMIN_TOKEN="$(openssl rand -hex 24)"; OPERATOR_TOKEN="$(openssl rand -hex 24)"
{
  echo "$ADMIN_TOKEN,testbed-admin,testbed-admin,system:masters"
  echo "$OPERATOR_TOKEN,gptoss-operator,gptoss-operator,system:masters"
} >pki/tokens.csv
write_kubeconfig "$KC" testbed-admin "$ADMIN_TOKEN"
write_kubeconfig "$STATE/operator.kubeconfig" gptoss-operator "$OPERATOR_TOKEN"

# Record every write (who, verb, resource, name) so tests and benchmarks count what was written,
# and the operator's lists (their URIs show the label selectors it watches with).
cat >audit-policy.yaml <<'POLICY'
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
- level: Metadata
  verbs: [create, update, patch, delete, deletecollection]
- level: Metadata
  users: [gptoss-operator]
  verbs: [list]
- level: None
POLICY

# --- etcd ---------------------------------------------------------------------------------
launch etcd "$ETCD_BIN/etcd" --name=testbed --data-dir="$STATE/etcd" \
  --listen-client-urls="http://127.0.0.1:$ETCD_PORT" --advertise-client-urls="http://127.0.0.1:$ETCD_PORT" \
  --listen-peer-urls="http://127.0.0.1:$ETCD_PEER_PORT" \
  --initial-advertise-peer-urls="http://127.0.0.1:$ETCD_PEER_PORT" \
  --initial-cluster="testbed=http://127.0.0.1:$ETCD_PEER_PORT" \
  --auto-compaction-retention=1 --quota-backend-bytes=8589934592 --unsafe-no-fsync=true
wait_for etcd 60 curl -sf "http://127.0.0.1:$ETCD_PORT/health"

# --- kube-apiserver -------------------------------------------------------------------------
# The default admission chain (PodSecurity, ServiceAccount, LimitRanger, ResourceQuota,
# Priority, RuntimeClass, webhooks, ...) plus NodeRestriction, as a normal cluster runs it.
launch kube-apiserver "$K8S_BIN/kube-apiserver" \
  --etcd-servers="http://127.0.0.1:$ETCD_PORT" \
  --bind-address=127.0.0.1 --advertise-address=127.0.0.1 --secure-port="$API_PORT" \
  --tls-cert-file=pki/apiserver.crt --tls-private-key-file=pki/apiserver.key \
  --client-ca-file=pki/ca.crt --token-auth-file=pki/tokens.csv \
  --authorization-mode=Node,RBAC --enable-admission-plugins=NodeRestriction \
  --service-account-issuer=https://kubernetes.default.svc.cluster.local \
  --service-account-key-file=pki/sa.pub --service-account-signing-key-file=pki/sa.key \
  --service-cluster-ip-range=10.96.0.0/16 --allow-privileged=true --profiling=false \
  --audit-policy-file=audit-policy.yaml --audit-log-path="$STATE/logs/audit.log" \
  --audit-log-format=json --audit-log-mode=blocking \
  --requestheader-client-ca-file=pki/front-proxy-ca.crt --requestheader-allowed-names=front-proxy-client \
  --requestheader-username-headers=X-Remote-User --requestheader-group-headers=X-Remote-Group \
  --requestheader-extra-headers-prefix=X-Remote-Extra- \
  --proxy-client-cert-file=pki/front-proxy-client.crt --proxy-client-key-file=pki/front-proxy-client.key
wait_for kube-apiserver 120 "${K[@]}" get --raw=/readyz

# --- controller-manager and scheduler -------------------------------------------------------
launch kube-controller-manager "$K8S_BIN/kube-controller-manager" --kubeconfig="$KC" \
  --authentication-kubeconfig="$KC" --authorization-kubeconfig="$KC" \
  --bind-address=127.0.0.1 --secure-port="$KCM_PORT" --leader-elect=false \
  --controllers='*' --service-account-private-key-file=pki/sa.key --root-ca-file=pki/ca.crt \
  --cluster-signing-cert-file=pki/ca.crt --cluster-signing-key-file=pki/ca.key
launch kube-scheduler "$K8S_BIN/kube-scheduler" --kubeconfig="$KC" \
  --authentication-kubeconfig="$KC" --authorization-kubeconfig="$KC" \
  --bind-address=127.0.0.1 --secure-port="$SCHED_PORT" --leader-elect=false
wait_for kube-controller-manager 60 curl -skf "https://127.0.0.1:$KCM_PORT/healthz"
wait_for kube-scheduler 60 curl -skf "https://127.0.0.1:$SCHED_PORT/healthz"

# --- kwok: the kubelets of the simulated nodes ------------------------------------------------
for f in "$KWOK_BIN"/stages/*.yaml "$HERE/stages/pod-behaviours.yaml"; do
  echo '---'; cat "$f"; echo
done >kwok-stages.yaml
launch kwok "$KWOK_BIN/kwok" --kubeconfig="$KC" --config="$STATE/kwok-stages.yaml" \
  --manage-all-nodes=false --manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake \
  --cidr=10.244.0.0/16 --node-ip=10.244.0.1 --node-lease-duration-seconds=40

python3 "$HERE/nodes.py" default | "${K[@]}" create -f - >/dev/null
"${K[@]}" create -f "$KWOK_BIN/storage-class.yaml" >/dev/null   # default class, kwok binds its claims
wait_for kwok 60 "${K[@]}" wait --for=condition=Ready node --all --timeout=2s
wait_for kube-controller-manager 60 "${K[@]}" -n default get serviceaccount default
echo "$API_PORT" >api-port
echo "test bed up in $((SECONDS - START))s: KUBECONFIG=$KC"
