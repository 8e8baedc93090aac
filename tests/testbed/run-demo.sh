#!/usr/bin/env bash
# `make run`: the operator against a cluster.
# - KUBECONFIG set: install the CRD there and run the operator in the foreground.
# - KUBECONFIG unset: start the test bed (a simulated GPU cluster on this machine), install the
#   CRD, run the operator, apply the 20b and 120b examples and show them reaching Ready with
#   their endpoints; the operator keeps running until Ctrl-C.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
cd "$REPO"
PY="$REPO/.venv/bin/python"

if [ -n "${KUBECONFIG:-}" ]; then
  echo "installing the CRD into the cluster of $KUBECONFIG"
  kubectl apply --server-side -f manifests/crds/gptossdeployments.yaml
  exec "$PY" -m gptoss_operator run
fi

bash "$HERE/up.sh"
eval "$(bash "$HERE/build.sh" all)"
export KUBECONFIG="$REPO/.testbed/kubeconfig"
K="$K8S_BIN/kubectl"
"$K" apply --server-side --force-conflicts -f manifests/crds/gptossdeployments.yaml
"$K" wait --for=condition=Established crd/gptossdeployments.gptoss.dev --timeout=60s

LOG="$REPO/.testbed/logs/operator-run.log"
KUBECONFIG="$REPO/.testbed/operator.kubeconfig" "$PY" -m gptoss_operator run \
  >"$LOG" 2>&1 &
OPERATOR=$!
trap 'kill $OPERATOR 2>/dev/null; wait $OPERATOR 2>/dev/null' EXIT INT TERM
echo "operator running (pid $OPERATOR, log $LOG)"

# What the 120b example refers to and a real cluster would already have: its API key Secret and
# the claim a pre-download job filled with the weights (kwok's provisioner binds it here).
"$K" -n default create secret generic gptoss-api-key --from-literal=api-key="$(openssl rand -hex 16)" \
  --dry-run=client -o yaml | "$K" apply -f - >/dev/null
"$K" -n default apply -f - >/dev/null <<'CLAIM'
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: gpt-oss-120b-weights}
spec: {accessModes: [ReadWriteMany], resources: {requests: {storage: 200Gi}}}
CLAIM

"$K" apply -f manifests/examples/gptoss-20b.yaml -f manifests/examples/gptoss-120b.yaml
"$K" -n default wait --for=condition=Ready gptossdeployment/gptoss-20b gptossdeployment/gptoss-120b \
  --timeout=180s
"$K" -n default get gptossdeployments -o wide
echo
echo "The simulated GPU cluster runs until 'make testbed-down'. In another shell:"
echo "  export KUBECONFIG=$KUBECONFIG PATH=$K8S_BIN:\$PATH"
echo "  kubectl scale gptossdeployment/gptoss-20b --replicas=2; kubectl describe gptoss gptoss-120b"
echo "Operator log follows; Ctrl-C stops the operator."
tail -n +1 -f "$LOG" &
wait $OPERATOR
